"""The ``mlexplore`` command line: the toolkit's jobs without a notebook (``mlexplore --help`` lists them).

Each command parses its options, calls the library function that does the job and prints; an
option that mirrors a library parameter takes that parameter's default (:func:`library_default`).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .analysis.featurisation import featurise, first_tags
from .datasets import REGISTRY
from .datasets.generate import OUTPUT_FORMATS, check_output_file, generate_dataset
from .demo import run_demo
from .descriptors import PRESETS, load_basis
from .dft import DFTSettings, failure_summary, label, parse_kpts, parse_magmoms, parse_mixer
from .errors import InputError, describe_error
from .execution import add_cluster_arguments, resolve_executor
from .io import parse_numbers, parse_pairs, parse_value, read, write_predictions
from .models import GraphNet, LatticeMLP
from .training import (DEFAULTS, ActiveLearning, Potential, compare_tasks, evaluate_potential, format_evaluation,
                       format_iteration, train_potential)
from .viz.report import (comparison_report, comparison_summary, evaluation_report, featurisation_report,
                         training_report, training_summary)

__all__ = ["main", "build_parser", "library_default", "COMPARE_SPLIT"]

COMPARE_SPLIT = ",".join(f"{f:g}" for f in DEFAULTS["graph"].fractions)
DEVICE = "auto (CUDA when present), cpu, cuda, …"


def library_default(func: Callable, name: str) -> Any:
    """The default of parameter ``name`` of ``func`` (a function or a class): where the CLI's defaults come from."""
    return inspect.signature(func).parameters[name].default


def _text(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)


def _basis(text: str):
    if text not in PRESETS and not text.endswith(".json") and not Path(text).exists():
        raise InputError(f"--basis {text!r} is neither a preset ({', '.join(PRESETS)}) nor a basis file (.json)")
    return text if text in PRESETS else load_basis(text)


def _cmd_generate(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    ds = generate_dataset(args.name, n=args.n, seed=args.seed, progress=not args.quiet, cache=not args.no_cache,
                          **{k: parse_value(v) for k, v in parse_pairs(args.param, "--param").items()})
    elapsed = time.perf_counter() - t0
    ds.save(args.out)
    print(f"{ds.summary()}\n\nwrote {len(ds)} structures to {args.out} ({elapsed:.1f} s to generate)")


def _cmd_demo(args: argparse.Namespace) -> None:
    print("mlexplore demo: generate → featurise → train STL and MTL → compare → HTML report\n")
    t0 = time.perf_counter()
    run_demo(n_per_composition=args.n, n_runs=args.runs, epochs=args.epochs, seed=args.seed,
             report=None if args.no_report else args.report, device=args.device, progress=not args.quiet)
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")


def _cmd_label(args: argparse.Namespace) -> None:
    data = read(args.file, format=args.format)
    settings = DFTSettings(ecut=args.ecut, kpts=parse_kpts(args.kpts, "--kpts"), kpt_density=args.kpt_density,
                           smearing=args.smearing, magmoms=parse_magmoms(args.magmom, "--magmom"), maxiter=args.maxiter,
                           hirshfeld=not args.no_hirshfeld, mixer=parse_mixer(args.mixer, "--mixer"))
    print(f"{len(data)} structures from {args.file}; records in {args.out} (a rerun resumes)")
    t0 = time.perf_counter()
    with resolve_executor(args.scheduler, workers=args.workers) as executor:
        labelled = label(data, args.out, settings=settings, progress=not args.quiet, retry_failed=args.retry_failed,
                         log_dir=args.log_dir, rescue_smearing=args.rescue_smearing, reverse=args.reverse,
                         executor=executor, threads=args.threads)
    print(f"{labelled.summary()}\n\n{len(labelled)} of {len(data)} structures labelled "
          f"({time.perf_counter() - t0:.1f} s this run)\n" + failure_summary(args.out, settings), end="")
    if args.dataset:
        labelled.save(args.dataset)
        print(f"wrote the labelled structures to {args.dataset}")


def _cmd_train(args: argparse.Namespace) -> None:
    data, test = read(args.file, format=args.format), read(args.test, format=args.format) if args.test else None
    split = {"fractions": parse_numbers(args.split or "0.9,0.1", "--split")} if args.split or test else {}
    print(f"{len(data)} structures from {args.file}" + (f"; test set: {len(test)} from {args.test}" if test else ""))
    result = train_potential(data, _basis(args.basis), test=test, forces=False if args.energy_only else None,
                             force_weight=args.force_weight, hidden=parse_numbers(args.hidden, "--hidden", int),
                             activation=args.activation, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                             patience=args.patience, seed=args.seed, device=args.device,
                             checkpoint_dir=args.checkpoint_dir, progress=not args.quiet, **split)
    print(training_summary(result))
    path = result.save(args.out)
    print(f"\nwrote the model to {path} (load_model / Potential.load; mlexplore evaluate {path} FILE)")
    if args.report:
        training_report(args.report, result, f"mlexplore train: {args.file}",
                        intro=f"{len(data)} structures; basis {result.settings['basis']}; model {path}")
        print(f"wrote the report to {args.report}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    model, data = Potential.load(args.model).model, read(args.file, format=args.format)
    groups = first_tags(data) if args.by_tag else None
    metrics = evaluate_potential(model, data, forces=False if args.no_forces else None, groups=groups)
    print(format_evaluation(metrics, title=f"{args.model} on {args.file}"))
    if args.predictions:
        names = write_predictions(args.predictions, data, metrics["predictions"])
        print(f"wrote the structures with {' and '.join(names)} to {args.predictions}")
    if args.report:
        evaluation_report(args.report, metrics, data, f"mlexplore evaluate: {args.model} on {args.file}", args.file)
        print(f"wrote the report to {args.report}")


def _cmd_featurise(args: argparse.Namespace) -> None:
    data = read(args.file, format=args.format)
    result = featurise(data, _basis(args.basis), device=args.device, progress=not args.quiet, name=args.basis)
    result.save(args.out)
    print(f"{result.summary()}\n\nwrote {args.out}: features (atoms × features), feature_names, structure, numbers")
    if args.report and featurisation_report(args.report, result, data, f"mlexplore featurise: {args.file}"):
        print(f"wrote the report to {args.report}")


def _cmd_compare(args: argparse.Namespace) -> None:
    data = read(args.file, format=args.format)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    combos = [tuple(t.strip() for t in c.split("+")) for c in (args.combinations or "").split(",") if c.strip()]
    given = {k: getattr(args, k) for k in ("width", "cutoff", "layers") if getattr(args, k) is not None}
    given["lr"] = args.lr or DEFAULTS["graph" if args.model == "graph" else "tasks"].lr  # the model's protocol
    if args.model != "graph" and ("cutoff" in given or "layers" in given):
        raise InputError("--cutoff and --layers are GraphNet settings (--model graph)", field="model")
    print(f"{len(data)} structures from {args.file}; {args.model} models, {args.runs} runs per combination "
          f"(new {'split' if args.vary == 'split' else 'initialisation'} each), ≤ {args.epochs} epochs"
          + (f"; finished models recorded in {args.resume}" if args.resume else ""))
    result = compare_tasks(data, targets, combos or None, model=args.model, n_runs=args.runs, epochs=args.epochs,
                           fractions=parse_numbers(args.split, "--split"), stratify=not args.no_stratify,
                           device=args.device, seed=args.seed, progress=not args.quiet, resume_file=args.resume,
                           patience=None if args.patience < 0 else args.patience, vary=args.vary, **given)
    print("\n" + comparison_summary(result.rows))
    if args.report:
        comparison_report(args.report, result.rows, result.runs, targets, f"mlexplore compare: {args.file}",
                          intro=f"{len(data)} structures; {args.model} models; {args.runs} runs per combination")
        print(f"wrote the report to {args.report}")


def _cmd_learn(args: argparse.Namespace) -> None:
    data, test = read(args.file, format=args.format), read(args.test, format=args.format) if args.test else None
    explore = [x for x in (read(args.pool, format=args.format) if args.pool else None, args.explore) if x is not None]
    ActiveLearning(_basis(args.basis), args.labeller, explore, args.iterations, args.per_iteration, args.strategy,
                   n_members=args.n_members, hidden=parse_numbers(args.hidden, "--hidden", int), epochs=args.epochs,
                   seed=args.seed, record_dir=args.record_dir, device=args.device, progress=not args.quiet,
                   callback=lambda r: print(format_iteration(r), flush=True)).fit(data, test)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mlexplore`` command."""
    parser = argparse.ArgumentParser(prog="mlexplore", description="Machine learning of atomistic materials.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--traceback", action="store_true", help="on an error, the full traceback (for a bug report)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = {"file": "structures: extxyz, npz, n2p2 input.data, or any ASE format", "--quiet": "no progress bars",
              "--format": "format name when the file name does not tell", "--report": "also write an HTML report",
              "--basis": f"a preset ({', '.join(PRESETS)}) or a basis file from save_basis (.json)",
              "--test": "a separate labelled test set (train: then --split has two parts)"}

    def command(name: str, func: Callable, help: str, description: str = "", common: str = "",
                library: Callable | None = None, **mirrored: str) -> Callable:
        """A subcommand: ``common`` shared options, ``param[:flag]=help`` a --flag with ``library``'s default."""
        p = sub.add_parser(name, help=help, description=description or help[0].upper() + help[1:] + ".")
        p.set_defaults(func=func)
        p.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        for flag in common.split():
            p.add_argument(flag, help=shared[flag], **{"--quiet": {"action": "store_true"},
                                                       "--basis": {"required": True}}.get(flag, {}))
        for key, text in mirrored.items():
            param, _, flag = key.partition(":")
            default = library_default(library, param)
            sequence = isinstance(default, (tuple, list))  # (given as text, parsed by the command)
            p.add_argument("--" + (flag or param).replace("_", "-"), default=_text(default) if sequence else default,
                           type=None if sequence else type(default), help=f"{text} (default {_text(default)})")
        return p.add_argument

    command("datasets", lambda _: print("\n".join(f"{k:<{max(map(len, REGISTRY))}}  {REGISTRY[k].description}  [size:"
                                                 f" --n sets {REGISTRY[k].size_parameter}]" for k in REGISTRY)),
            "list the built-in datasets and their size parameter")
    arg = command("generate", _cmd_generate, "generate a built-in dataset and save it", "", "--quiet",
                  generate_dataset, seed="random seed")
    arg("name", help="dataset name, e.g. lattice_alloy")
    arg("--n", type=int, default=None, help="size: the dataset's size parameter")
    arg("--out", required=True, help=f"output file: {OUTPUT_FORMATS}")
    arg("--param", action="append", metavar="KEY=VALUE", help="generator argument, e.g. --param repeat=2,2,2")
    arg("--no-cache", action="store_true", help="do not use or fill the dataset cache")
    command("info", lambda args: print(read(args.file, format=args.format).summary()), "print the summary table of a "
            "dataset file", "", "file --format")
    arg = command("demo", _cmd_demo, "run the main demo on built-in data", "CuAu lattice alloy (EMT): generate, split "
                  "by composition, featurise, train STL and MTL networks over repeated splits, compare, write an HTML "
                  "report.", "--quiet", run_demo, **{"n_per_composition:n": "configurations per composition",
                      "epochs": "epochs per model", "n_runs:runs": "repeated splits per task combination",
                      "report": "HTML report", "device": DEVICE, "seed": "random seed"})
    arg("--no-report", action="store_true", help="print only")
    arg = command("label", _cmd_label, "DFT labels (GPAW) for the structures in a file, resumable", "Spin-polarised "
                  "PBE energies, forces, stress, moments and Hirshfeld charges with GPAW (mlexplore[dft]), one record "
                  "per structure appended to --out as it ends: a rerun skips what is done, a failed SCF is recorded "
                  "and the run goes on.", "file --format --quiet", DFTSettings, maxiter="SCF iterations",
                  ecut="plane-wave cutoff, eV", kpt_density="k-points per Å⁻¹", smearing="Fermi-Dirac width, eV")
    arg("--out", required=True, help="record file (.jsonl), appended to")
    arg("--dataset", help=f"also write the labelled structures: {OUTPUT_FORMATS}")
    arg("--kpts", metavar="N1,N2,N3", help="Monkhorst-Pack grid (default: from --kpt-density)")
    arg("--magmom", action="append", metavar="EL=MU", help="initial moment per element, μ_B (repeatable; defaults: "
        + ", ".join(f"{k} {v:g}" for k, v in DFTSettings().magmoms.items()) + ")")
    arg("--mixer", metavar="KIND[:beta=B,nmaxold=N,weight=W]", help="density mixer: dif (MixerDif, e.g. for AFM "
        "iron dif:beta=0.05,nmaxold=5,weight=50), sum or plain (default: GPAW's)")
    arg("--no-hirshfeld", action="store_true", help="skip the Hirshfeld charges (10–30 s per 16 atoms)")
    arg("--rescue-smearing", type=float, metavar="EV", help="retry a failed SCF from this wider smearing (e.g. 0.3)")
    arg("--retry-failed", action="store_true", help="compute failed structures again")
    arg("--log-dir", help="one GPAW text log per structure in this folder")
    arg("--reverse", action="store_true", help="from the last structure down (a second process on the same --out)")
    add_cluster_arguments(arg, "structure")
    arg = command("train", _cmd_train, "fit a BP potential to the labelled structures in a file", "Split FILE at "
                  "random, train a Behler-Parrinello network on energies (and forces), print the scores of every set "
                  "and write the model. Ctrl-C stops training and keeps the best model so far.", "file --format "
                  "--basis --test --report --quiet", train_potential, force_weight="weight of the force loss",
                  hidden="hidden layer widths", activation="tanh, softplus, relu or silu", epochs="at most this many "
                  "epochs", lr="Adam learning rate", batch_size="structures per batch", patience="stop after this many "
                  "epochs without a better validation loss", seed="split and initialisation seed", device=DEVICE)
    arg("--out", required=True, help="model file to write (.pt)")
    arg("--split", metavar="TRAIN,VAL[,TEST]", help="fractions of FILE (default "
        f"{_text(library_default(train_potential, 'fractions'))}; with --test 0.9,0.1)")
    arg("--energy-only", action="store_true", help="do not train on forces even if FILE has them")
    arg("--checkpoint-dir", help="write best.pt/last.pt here during training")
    arg = command("evaluate", _cmd_evaluate, "score a trained potential on labelled structures (RMSE, MAE, R²)", "",
                  "--format --report")
    arg("model", help="model file (.pt)")
    arg("file", help="labelled structures")
    arg("--no-forces", action="store_true", help="score energies only")
    arg("--by-tag", action="store_true", help="also the energy RMSE per first tag of each structure")
    arg("--predictions", help="write FILE's structures with energy_predicted (and forces_predicted)")
    arg = command("compare", _cmd_compare, "single- vs multi-task models on the labels of a file", "Train every STL "
                  "and MTL combination of the targets --runs times; print test RMSE and R² as mean ± std (001 table "
                  "1). With --resume a rerun trains only the models not recorded yet.",
                  "file --format --report --quiet", compare_tasks, **{"n_runs:runs": "models per combination",
                      "epochs": "at most this many epochs per model", "patience": "stop a model after this many "
                      "epochs without a better validation loss; -1: never", "seed": "split and initialisation seed",
                      "device": DEVICE})
    arg("--targets", required=True, help="labels to predict, e.g. mixing_energy,charge_transfer,magmoms")
    arg("--combinations", metavar="A,A+B,…", help="only these (default: all, singles first)")
    arg("--model", choices=["graph", "lattice"], default="graph", help="GraphNet (default) or LatticeMLP")
    vary = library_default(compare_tasks, "vary")
    arg("--vary", choices=["split", "init"], default=vary, help=f"what changes between runs (default {vary})")
    arg("--split", default=COMPARE_SPLIT, metavar="TRAIN,VAL,TEST", help=f"fractions, 001's (default {COMPARE_SPLIT})")
    arg("--no-stratify", action="store_true", help="random splits instead of splits stratified by composition")
    arg("--lr", type=float, help=f"Adam lr (default {DEFAULTS['graph'].lr:g} graph, {DEFAULTS['tasks'].lr:g} lattice)")
    arg("--width", type=int, help=f"node features (graph, default {library_default(GraphNet, 'width')}) or hidden "
        f"width (lattice, default {library_default(LatticeMLP, 'width')})")
    arg("--layers", type=int, help=f"graph convolutions (default {library_default(GraphNet, 'layers')})")
    arg("--cutoff", type=float, help=f"graph radius, Å (default {library_default(GraphNet, 'cutoff')})")
    arg("--resume", metavar="RUNS.jsonl", help="record every finished model here; a rerun goes on from it")
    arg = command("featurise", _cmd_featurise, "symmetry-function features of a file, their correlations and PCA",
                  "", "file --format --basis --report --quiet", featurise, device="cpu, cuda or auto")
    arg("--out", required=True, help="features file to write (.npz)")
    arg = command("learn", _cmd_learn, "active learning: explore, label what the committee is least sure of, retrain",
                  "", "file --format --basis --test --quiet", ActiveLearning, iterations="rounds after the first fit",
                  per_iteration="labels per round", n_members="committee size", strategy="uncertainty or random",
                  labeller="emt or gpaw", hidden="hidden layers", epochs="per member and round", seed="random seed",
                  device=DEVICE)
    arg("--out", dest="record_dir", metavar="DIR", required=True, help="records, labelled.xyz, models/; reruns resume")
    arg("--pool", help="candidate structures")
    arg("--explore", metavar="md,rattle", help="explore from the labelled structures")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status: 0 success, 2 bad input (:func:`~mlexplore.errors.describe_error`: one
    line on stderr names the file and the problem), 1 a bug (one line), 130 interrupted. ``--traceback`` re-raises."""
    args = build_parser().parse_args(argv)
    try:  # before any work: no output is an existing directory, structures go to a name that tells the format
        for flag in [f for f in ("out", "dataset", "predictions", "resume", "report") if getattr(args, f, None)]:
            check_output_file(getattr(args, flag), f"--{flag}",
                              structures=flag in ("dataset", "predictions") or args.command == "generate")
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"mlexplore {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.traceback:
            raise
        bad, text = describe_error(err)
        print(f"mlexplore {args.command}: " + (f"error: {text}" if bad else f"internal error: {text} (rerun with "
                                               "--traceback for the full traceback)"), file=sys.stderr)
        return 2 if bad else 1


if __name__ == "__main__":
    sys.exit(main())
