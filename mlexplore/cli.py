"""The ``mlexplore`` command line: the toolkit's jobs without a notebook.

    mlexplore datasets                       list the built-in datasets
    mlexplore generate NAME --n N --out F    generate one and save it
    mlexplore info FILE                      summary table of a dataset file
    mlexplore demo                           the main demo on built-in data
    mlexplore label FILE --out RUN.jsonl     DFT labels (GPAW) for the structures in FILE, resumable
    mlexplore train FILE --out MODEL.pt      fit a BP potential to the labelled structures in FILE
    mlexplore evaluate MODEL.pt FILE         score a trained potential on labelled structures
    mlexplore compare FILE --targets A,B     single- vs multi-task models on the labels of FILE
    mlexplore featurise FILE --basis B --out F.npz   symmetry-function features, their correlations and PCA
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def _parse_value(text: str):
    """``"3"`` → 3, ``"0.1"`` → 0.1, ``"true"`` → True, ``"2,2,2"`` → (2, 2, 2), else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if "," in text:
        return tuple(_parse_value(t) for t in text.split(","))
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _cmd_datasets(args: argparse.Namespace) -> int:
    from .datasets import REGISTRY

    width = max(len(k) for k in REGISTRY)
    for name, entry in REGISTRY.items():
        print(f"{name:<{width}}  {entry.description}  [size: --n sets {entry.size_parameter}]")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .datasets import REGISTRY
    from .errors import InputError

    entry = REGISTRY.get(args.name)
    if entry is None:
        raise InputError(f"unknown dataset {args.name!r}; choose from {', '.join(REGISTRY)}")
    kwargs = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--param expects KEY=VALUE, got {item!r}")
        kwargs[key] = _parse_value(value)
    if args.n is not None:
        kwargs[entry.size_parameter] = args.n
    kwargs.setdefault("seed", args.seed)
    t0 = time.perf_counter()
    try:
        ds = entry.function(progress=not args.quiet, cache=not args.no_cache, **kwargs)
    except TypeError as exc:
        raise InputError(f"{args.name}: {exc}") from None
    elapsed = time.perf_counter() - t0
    ds.save(args.out)
    print(ds.summary())
    print(f"\nwrote {len(ds)} structures to {args.out} ({elapsed:.1f} s to generate)")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .io import read

    ds = read(args.file, format=args.format)
    print(ds.summary())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    print("mlexplore demo: generate → featurise → train STL and MTL → compare → HTML report\n")
    t0 = time.perf_counter()
    run_demo(n_per_composition=args.n, n_runs=args.runs, epochs=args.epochs, seed=args.seed,
             report=None if args.no_report else args.report, device=args.device, progress=not args.quiet)
    print(f"\ndone in {time.perf_counter() - t0:.1f} s")
    return 0


def _parse_magmoms(items: Sequence[str] | None) -> dict:
    """``["Fe=2.5", "Pt=0.4"]`` → ``{"Fe": 2.5, "Pt": 0.4}`` (μ_B)."""
    from ase.data import chemical_symbols

    from .errors import InputError

    out = {}
    for item in items or []:
        symbol, sep, value = item.partition("=")
        symbol = symbol.strip()
        if not sep or symbol not in chemical_symbols[1:]:
            raise InputError(f"--magmom expects ELEMENT=MOMENT (e.g. Fe=2.5), got {item!r}", field="magmom")
        try:
            out[symbol] = float(value)
        except ValueError:
            raise InputError(f"--magmom {item!r}: {value!r} is not a number (μ_B)", field="magmom") from None
    return out


def _parse_mixer(text: str | None) -> dict | None:
    """``"dif:beta=0.05,nmaxold=5,weight=50"`` → ``{"kind": "dif", "beta": 0.05, ...}``; None → None."""
    from .errors import InputError

    if text is None:
        return None
    kind, _, rest = text.partition(":")
    mixer: dict = {"kind": kind.strip()}
    for item in filter(None, (t.strip() for t in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in ("beta", "nmaxold", "weight"):
            raise InputError(f"--mixer {text!r}: expected KIND[:beta=B,nmaxold=N,weight=W], got {item!r}",
                             field="mixer")
        try:
            mixer[key] = int(value) if key == "nmaxold" else float(value)
        except ValueError:
            raise InputError(f"--mixer {text!r}: {key} must be a number, got {value!r}", field="mixer") from None
    return mixer


def _cmd_label(args: argparse.Namespace) -> int:
    from .dft import DEFAULT_MAGMOMS, DFTSettings, failed_records, label
    from .io import read

    data = read(args.file, format=args.format)
    magmoms = dict(DEFAULT_MAGMOMS)
    magmoms.update(_parse_magmoms(args.magmom))
    kpts = None
    if args.kpts is not None:
        kpts = _parse_value(args.kpts)
        if not (isinstance(kpts, tuple) and len(kpts) == 3 and all(isinstance(k, int) for k in kpts)):
            from .errors import InputError

            raise InputError(f"--kpts expects three integers like 2,2,2, got {args.kpts!r}", field="kpts")
    settings = DFTSettings(ecut=args.ecut, kpts=kpts, kpt_density=args.kpt_density, smearing=args.smearing,
                           magmoms=magmoms, hirshfeld=not args.no_hirshfeld, maxiter=args.maxiter,
                           mixer=_parse_mixer(args.mixer))
    print(f"{len(data)} structures from {args.file}; records in {args.out} (a rerun resumes)")
    t0 = time.perf_counter()
    labelled = label(data, args.out, settings=settings, progress=not args.quiet, retry_failed=args.retry_failed,
                     log_dir=args.log_dir, rescue_smearing=args.rescue_smearing, reverse=args.reverse)
    # (the record file may also hold other runs: list the failures at these settings)
    failed = [r for r in failed_records(args.out) if r.get("settings") == settings.to_dict()]
    print(labelled.summary())
    print(f"\n{len(labelled)} of {len(data)} structures labelled ({time.perf_counter() - t0:.1f} s this run)")
    for r in failed:
        print(f"  failed: structure {r['index']}: {r['error'].splitlines()[0]}")
    if failed:
        print("  (a rerun skips them; --retry-failed or --rescue-smearing 0.3 tries again)")
    if args.dataset:
        labelled.save(args.dataset)
        print(f"wrote the labelled structures to {args.dataset}")
    return 0


def _load_basis_arg(text: str):
    """``--basis``: a preset name, or a JSON file written by ``save_basis``."""
    from pathlib import Path

    from .descriptors import PRESETS, load_basis

    if text in PRESETS:
        return text
    if text.endswith(".json") or Path(text).exists():
        return load_basis(text)
    from .errors import InputError

    raise InputError(f"--basis {text!r} is neither a preset ({', '.join(PRESETS)}) nor a basis file (.json)",
                     field="basis")


def _int_list(text: str, option: str) -> list[int]:
    from .errors import InputError

    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"{option} expects integers separated by commas, got {text!r}", field=option) from None
    if not values or any(v < 1 for v in values):
        raise InputError(f"{option} expects positive integers, got {text!r}", field=option)
    return values


def _float_list(text: str, option: str) -> list[float]:
    from .errors import InputError

    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"{option} expects numbers separated by commas, got {text!r}", field=option) from None


def _parity_blocks(metrics: dict, pred: dict, data, name: str) -> list:
    """Report blocks: the scores and the energy (and force) parity plots of one scored set
    (``pred``: its predictions, as ``predict`` returns them)."""
    from .training import format_evaluation
    from .viz.figures import parity_plot

    blocks = [(f"Scores, {name}", format_evaluation(metrics)),
              (f"Energy per atom, {name}", parity_plot(data.label("energy") / data.n_atoms,
                                                       pred["energy"] / data.n_atoms, unit="eV/atom"))]
    if "forces" in metrics:
        blocks.append((f"Force components, {name}", parity_plot(data.label("forces"), pred["forces"], unit="eV/Å")))
    return blocks


def _cmd_train(args: argparse.Namespace) -> int:
    from .io import read
    from .training import format_evaluation, train_potential

    data = read(args.file, format=args.format)
    test = read(args.test, format=args.format) if args.test else None
    basis = _load_basis_arg(args.basis)
    split = args.split or ("0.9,0.1" if test is not None else "0.8,0.1,0.1")
    fractions = _float_list(split, "--split")
    forces = False if args.energy_only else None
    print(f"{len(data)} structures from {args.file}" + (f"; test set: {len(test)} from {args.test}" if test else ""))
    result = train_potential(data, basis, test=test, fractions=fractions, forces=forces,
                             force_weight=args.force_weight, hidden=_int_list(args.hidden, "--hidden"),
                             activation=args.activation, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                             patience=args.patience, seed=args.seed, device=args.device,
                             checkpoint_dir=args.checkpoint_dir, progress=not args.quiet)
    s = result.settings
    print(f"basis {s['basis']} ({s['n_features']} features per atom), network {s['hidden']} {s['activation']}, "
          f"targets {'+'.join(s['targets'])}; split {s['split_sizes'][0]}/{s['split_sizes'][1]}/{s['split_sizes'][2]}")
    if result.history.interrupted:
        print(f"interrupted: keeping the best model (epoch {result.history.best_epoch})")
    print(f"trained in {result.seconds:.1f} s, best epoch {result.history.best_epoch} of {len(result.history.epoch)}")
    for name in ("train", "val", "test"):
        if name in result.metrics:
            print()
            print(format_evaluation(result.metrics[name], title={"train": "training set", "val": "validation set",
                                                                 "test": "test set"}[name]))
    path = result.save(args.out)
    print(f"\nwrote the model to {path} (load_model / Potential.load; mlexplore evaluate {path} FILE)")
    if args.report:
        from .viz.figures import learning_curves
        from .viz.report import html_report

        blocks = [("Learning curves", learning_curves(result.history))]
        key = "test" if result.test is not None else "val"
        blocks += _parity_blocks(result.metrics[key], result.predictions[key], getattr(result, key),
                                 "test set" if key == "test" else "validation set")
        html_report(args.report, f"mlexplore train: {args.file}", blocks,
                    intro=f"{len(data)} structures; basis {s['basis']}; model {path}")
        print(f"wrote the report to {args.report}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .io import read
    from .training import evaluate_potential, format_evaluation, load_model

    model = load_model(args.model)
    data = read(args.file, format=args.format)
    groups = None
    if args.by_tag:
        groups = [tags[0] if len(tags) else "(untagged)" for tags in data.tags]
    metrics = evaluate_potential(model, data, forces=False if args.no_forces else None, groups=groups)
    print(format_evaluation(metrics, title=f"{args.model} on {args.file}"))
    if args.predictions:
        pred = metrics["predictions"]
        out = data.copy()
        out.add_label("energy_predicted", np.asarray(pred["energy"]), per_atom=False)
        if "forces" in pred:
            out.add_label("forces_predicted", np.asarray(pred["forces"]), per_atom=True)
        out.save(args.predictions)
        print(f"wrote the structures with energy_predicted{' and forces_predicted' if 'forces' in pred else ''} "
              f"to {args.predictions}")
    if args.report:
        from .viz.report import html_report

        html_report(args.report, f"mlexplore evaluate: {args.model} on {args.file}",
                    _parity_blocks(metrics, metrics["predictions"], data, args.file))
        print(f"wrote the report to {args.report}")
    return 0


def _cmd_featurise(args: argparse.Namespace) -> int:
    import numpy as np

    from .analysis import feature_report, pca
    from .io import read
    from .io.files import atomic_write
    from .training.fit import resolve_device
    from .descriptors import resolve_basis

    data = read(args.file, format=args.format)
    basis = _load_basis_arg(args.basis)
    sf = resolve_basis(basis, data.elements)
    t0 = time.perf_counter()
    features = sf.compute(data, device=resolve_device(args.device), progress=not args.quiet).cpu().numpy()
    seconds = time.perf_counter() - t0
    names = sf.feature_names
    structure = np.repeat(np.arange(len(data)), data.n_atoms)
    with atomic_write(args.out, text=False) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, features=features, feature_names=np.array(names), structure=structure,
                                numbers=data.numbers)
    print(f"{len(data)} structures, {features.shape[0]} atoms × {features.shape[1]} features "
          f"({args.basis}; {seconds:.2f} s, {features.shape[0] / max(seconds, 1e-9):.0f} atoms/s)")
    print(f"wrote {args.out}: features (atoms × features), feature_names, structure (of each atom), numbers")
    print()
    report = feature_report(features, names)
    print(report.summary())
    n_pc = min(5, *features.shape)
    result = pca(features, n_components=n_pc) if features.shape[0] > 1 else None
    if result is not None:
        print("PCA (standardised features): explained variance "
              + ", ".join(f"PC{k + 1} {v:.1%}" for k, v in enumerate(result.explained_variance_ratio)))
    if args.report and result is not None and n_pc >= 2:
        from ase.data import chemical_symbols

        from .viz import html_report, pca_map

        element = np.array([chemical_symbols[z] for z in data.numbers])
        first_tag = np.array([(tags[0] if len(tags) else "(untagged)") for tags in data.tags], dtype=object)[structure]
        hover = [f"structure {s}, atom {a}" for s, a in zip(structure, np.arange(len(structure)) - data.offsets[structure])]
        blocks = [("Correlations", report.summary(max_items=20)),
                  ("PCA map by element", pca_map(result.scores, element, hover=hover)),
                  ("PCA map by first tag", pca_map(result.scores, first_tag, hover=hover))]
        html_report(args.report, f"mlexplore featurise: {args.file}", blocks,
                    intro=f"{len(data)} structures, {features.shape[0]} atoms, {features.shape[1]} features "
                          f"({args.basis})")
        print(f"wrote the report to {args.report}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .data.dataset import LABEL_UNITS
    from .errors import InputError
    from .io import read
    from .training import compare_tasks, format_task_table

    data = read(args.file, format=args.format)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    combos = None
    if args.combinations:
        combos = [tuple(t.strip() for t in c.split("+")) for c in args.combinations.split(",") if c.strip()]
    kwargs: dict = {}
    if args.width is not None:
        kwargs["width"] = args.width
    if args.model == "graph":
        kwargs.update(cutoff=args.cutoff, layers=args.layers)
    elif args.layers != 6 or args.cutoff != 5.0:
        raise InputError("--cutoff and --layers are GraphNet settings (--model graph)", field="model")
    lr = args.lr if args.lr is not None else (1e-3 if args.model == "graph" else 1e-4)
    print(f"{len(data)} structures from {args.file}; {args.model} models, {args.runs} runs per combination "
          f"(new {'split' if args.vary == 'split' else 'initialisation'} each), ≤ {args.epochs} epochs"
          + (f"; finished models recorded in {args.resume}" if args.resume else ""))
    rows, runs = compare_tasks(data, targets, combos, model=args.model, n_runs=args.runs,
                               fractions=_float_list(args.split, "--split"), stratify=not args.no_stratify,
                               epochs=args.epochs, lr=lr, vary=args.vary, device=args.device, seed=args.seed,
                               progress=not args.quiet, return_runs=True, resume_file=args.resume,
                               patience=None if args.patience < 0 else args.patience, **kwargs)
    print()
    print(format_task_table(rows))
    print()
    for r in rows:
        print(f"{('MTL ' if r['n_tasks'] > 1 else 'STL ') + r['tasks']:<40} {r['target']:<18} "
              f"R² {r['r2_mean']:.4f} ± {r['r2_std']:.2g}")
    worse = [f"{r['tasks']} → {r['target']}" for r in rows if r["r2_mean"] <= 0]
    if worse:
        print("\nno better than predicting the mean (R² ≤ 0): " + "; ".join(worse)
              + " — more epochs, a lower --lr, or more data")
    if args.report:
        from .viz import html_report, task_error_pdfs, task_table

        blocks = [("Comparison", format_task_table(rows)), ("Table", task_table(rows))]
        for t in targets:
            unit = LABEL_UNITS.get(t, "").split(" ")[0]
            blocks.append((f"Test-error PDFs, {t}", task_error_pdfs(runs, t, unit)))
        html_report(args.report, f"mlexplore compare: {args.file}", blocks,
                    intro=f"{len(data)} structures; {args.model} models; {args.runs} runs per combination")
        print(f"wrote the report to {args.report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mlexplore`` command."""
    parser = argparse.ArgumentParser(
        prog="mlexplore",
        description="Machine learning of atomistic materials: datasets, descriptors, potentials.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("datasets", help="list the built-in datasets",
                       description="List the built-in datasets and their size parameter.")
    p.set_defaults(func=_cmd_datasets)

    p = sub.add_parser("generate", help="generate a built-in dataset and save it",
                       description="Generate a built-in dataset (see `mlexplore datasets`) and write it "
                                   "to a file: .xyz/.extxyz (optionally .gz), .npz (binary cache) or "
                                   "input.data (n2p2).")
    p.add_argument("name", help="dataset name, e.g. lattice_alloy")
    p.add_argument("--n", type=int, default=None, help="size: the dataset's size parameter")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="extra generator argument, e.g. --param pair=AgPd --param repeat=2,2,2")
    p.add_argument("--no-cache", action="store_true", help="do not use or fill the dataset cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("info", help="print the summary table of a dataset file",
                       description="Read a dataset file (extxyz, npz, n2p2 input.data, LSMS directory, "
                                   "or any ASE format) and print its summary.")
    p.add_argument("file")
    p.add_argument("--format", default=None, help="format name when the file name does not tell")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("demo", help="run the main demo on built-in data",
                       description="The whole path on a CuAu lattice alloy (EMT): generate (or load from "
                                   "cache), split stratified by composition, featurise and map the "
                                   "environments, train single- and multi-task networks over repeated "
                                   "splits, print the comparison table, write a self-contained HTML report.")
    p.add_argument("--n", type=int, default=20, help="configurations per composition (default 20)")
    p.add_argument("--runs", type=int, default=3, help="repeated splits per task combination (default 3)")
    p.add_argument("--epochs", type=int, default=150, help="training epochs per model (default 150)")
    p.add_argument("--report", default="mlexplore-demo.html", help="HTML report (default mlexplore-demo.html)")
    p.add_argument("--no-report", action="store_true", help="print only")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, …")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)

    defaults = _dft_defaults()
    p = sub.add_parser("label", help="DFT labels (GPAW) for the structures in a file, resumable",
                       description="Compute spin-polarised PBE energies, forces, stress, per-atom moments and "
                                   "Hirshfeld charges with GPAW (extra mlexplore[dft], scripts/install_gpaw.sh) "
                                   "for every structure in FILE. One record per structure is appended to --out "
                                   "as it finishes, so a rerun of the same command skips what is done; a "
                                   "structure whose SCF fails is recorded and the run goes on.")
    p.add_argument("file", help="structures: extxyz, npz, n2p2 input.data, or any ASE format; "
                                "initial_magmoms in the file seed the spins")
    p.add_argument("--format", default=None, help="format name when the file name does not tell")
    p.add_argument("--out", required=True, help="record file (.jsonl), appended to")
    p.add_argument("--dataset", default=None, help="also write the labelled structures (.extxyz[.gz], .npz)")
    p.add_argument("--ecut", type=float, default=defaults.ecut, help=f"plane-wave cutoff, eV (default {defaults.ecut:g})")
    p.add_argument("--kpts", default=None, metavar="N1,N2,N3", help="Monkhorst-Pack grid (default: from --kpt-density)")
    p.add_argument("--kpt-density", type=float, default=defaults.kpt_density,
                   help=f"k-points per Å⁻¹ along each reciprocal vector (default {defaults.kpt_density:g})")
    p.add_argument("--smearing", type=float, default=defaults.smearing,
                   help=f"Fermi-Dirac width, eV (default {defaults.smearing:g})")
    p.add_argument("--magmom", action="append", metavar="EL=MU",
                   help="initial moment per element, μ_B, for atoms without their own "
                        "(repeatable; defaults: " + ", ".join(f"{k} {v:g}" for k, v in defaults.magmoms.items()) + ")")
    p.add_argument("--mixer", default=None, metavar="KIND[:beta=B,nmaxold=N,weight=W]",
                   help="density mixer: dif (GPAW MixerDif, magnetisation mixed separately; good for AFM "
                        "iron, e.g. dif:beta=0.05,nmaxold=5,weight=50), sum or plain (default: GPAW's)")
    p.add_argument("--no-hirshfeld", action="store_true", help="skip the Hirshfeld charges (10–30 s per 16 atoms)")
    p.add_argument("--maxiter", type=int, default=defaults.maxiter,
                   help=f"SCF iterations before a structure counts as failed (default {defaults.maxiter})")
    p.add_argument("--rescue-smearing", type=float, default=None, metavar="EV",
                   help="give non-converged SCFs one more try: converge at this wider smearing first, "
                        "then at --smearing (e.g. 0.3)")
    p.add_argument("--retry-failed", action="store_true", help="compute failed structures again")
    p.add_argument("--log-dir", default=None, help="one GPAW text log per structure in this folder")
    p.add_argument("--reverse", action="store_true",
                   help="work from the last structure down: run a second `mlexplore label` with --reverse on "
                        "the same file and --out to use two cores; they skip what the other finished")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_label)

    p = sub.add_parser("train", help="fit a BP potential to the labelled structures in a file",
                       description="Split FILE at random (train/validation/test), train a Behler-Parrinello "
                                   "network on energies (and forces, when FILE has them), print the scores of "
                                   "every set and write the model with its settings, scores and history. "
                                   "Ctrl-C stops training and keeps the best model so far.")
    p.add_argument("file", help="labelled structures: extxyz, npz, n2p2 input.data, or any ASE format")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument("--basis", required=True,
                   help="a preset (bloore-fe-bp, bloore-fe-sannip — spin terms, needs magmoms —, loeffler-au) "
                        "or a basis file written by mlexplore.descriptors.save_basis (.json)")
    p.add_argument("--format", default=None, help="format name when the file name does not tell")
    p.add_argument("--test", default=None, help="a separate test file (then --split has two parts)")
    p.add_argument("--split", default=None, metavar="TRAIN,VAL[,TEST]",
                   help="fractions of FILE (default 0.8,0.1,0.1; with --test 0.9,0.1)")
    p.add_argument("--energy-only", action="store_true", help="do not train on forces even if FILE has them")
    p.add_argument("--force-weight", type=float, default=1.0, help="weight of the force loss (default 1)")
    p.add_argument("--hidden", default="25,25", help="hidden layer widths (default 25,25)")
    p.add_argument("--activation", default="tanh", help="tanh (default), softplus, relu or silu")
    p.add_argument("--epochs", type=int, default=200, help="at most this many epochs (default 200)")
    p.add_argument("--patience", type=int, default=50, help="stop after this many epochs without a better "
                                                            "validation loss (default 50)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=16, help="structures per batch (default 16)")
    p.add_argument("--seed", type=int, default=0, help="split and initialisation seed (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, …")
    p.add_argument("--checkpoint-dir", default=None, help="write best.pt/last.pt here during training")
    p.add_argument("--report", default=None, help="also write an HTML report: learning curves, parity plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score a trained potential on labelled structures",
                       description="Predict energies (and forces) of the structures in FILE with a model written "
                                   "by `mlexplore train` (or save_model) and print RMSE, MAE and R² against "
                                   "FILE's labels, beside the error of predicting the mean.")
    p.add_argument("model", help="model file (.pt)")
    p.add_argument("file", help="labelled structures")
    p.add_argument("--format", default=None, help="format name when the file name does not tell")
    p.add_argument("--no-forces", action="store_true", help="score energies only")
    p.add_argument("--by-tag", action="store_true", help="also the energy RMSE per first tag of each structure")
    p.add_argument("--predictions", default=None, help="write FILE's structures with energy_predicted "
                                                       "(and forces_predicted) labels to this file")
    p.add_argument("--report", default=None, help="also write an HTML report with parity plots")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("compare", help="single- vs multi-task models on the labels of a file",
                       description="Train every single-task (STL) and multi-task (MTL) combination of the "
                                   "targets --runs times on the structures of FILE and print the test RMSE and R² "
                                   "as mean ± std (001 table 1; 000's repeated splits). GraphNet (001) by "
                                   "default; LatticeMLP (000) for structures on one fixed lattice. With --resume "
                                   "every finished model is recorded and a rerun trains only the rest.")
    p.add_argument("file", help="labelled structures")
    p.add_argument("--targets", required=True,
                   help="labels to predict, e.g. mixing_energy,charge_transfer,magmoms (per-structure or per-atom)")
    p.add_argument("--combinations", default=None, metavar="A,A+B,…",
                   help="only these combinations (default: every one, singles first)")
    p.add_argument("--format", default=None, help="format name when the file name does not tell")
    p.add_argument("--model", choices=["graph", "lattice"], default="graph",
                   help="graph (GraphNet, any structures; default) or lattice (LatticeMLP, one fixed lattice)")
    p.add_argument("--runs", type=int, default=3, help="models per combination (default 3)")
    p.add_argument("--vary", choices=["split", "init"], default="split",
                   help="each run gets a new split (000; default) or only new initial weights (001)")
    p.add_argument("--split", default="0.7,0.15,0.15", metavar="TRAIN,VAL,TEST",
                   help="fractions (default 0.7,0.15,0.15)")
    p.add_argument("--no-stratify", action="store_true",
                   help="random splits instead of splits stratified by composition")
    p.add_argument("--epochs", type=int, default=100, help="at most this many epochs per model (default 100)")
    p.add_argument("--patience", type=int, default=50,
                   help="stop a model after this many epochs without a better validation loss (default 50; -1: never)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3 graph, 1e-4 lattice)")
    p.add_argument("--width", type=int, default=None, help="node features (graph, default 20) or hidden width "
                                                           "(lattice, default 200)")
    p.add_argument("--layers", type=int, default=6, help="graph convolutions (default 6)")
    p.add_argument("--cutoff", type=float, default=5.0, help="graph radius, Å (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, …")
    p.add_argument("--resume", default=None, metavar="RUNS.jsonl",
                   help="record every finished model here; a rerun with the same data and options goes on")
    p.add_argument("--report", default=None, help="also write an HTML report: table and test-error PDFs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("featurise", help="symmetry-function features of a file, their correlations and PCA",
                       description="Compute the features of every atom of FILE with a basis, write them to an .npz "
                                   "file, and print which features are dead or redundant and how the variance "
                                   "spreads over the principal components (an HTML report adds PCA maps).")
    p.add_argument("file", help="structures: extxyz, npz, n2p2 input.data, or any ASE format")
    p.add_argument("--basis", required=True, help="a preset or a basis file (.json, from save_basis)")
    p.add_argument("--out", required=True, help="features file to write (.npz)")
    p.add_argument("--format", default=None, help="format name when the file name does not tell")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    p.add_argument("--report", default=None, help="also write an HTML report with PCA maps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_featurise)
    return parser


def _dft_defaults():
    from .dft.settings import DFTSettings

    return DFTSettings()


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 success, 1 bad input, 130 interrupted)."""
    from .errors import InputError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputError, FileNotFoundError, ImportError) as exc:
        print(f"mlexplore {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlexplore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
