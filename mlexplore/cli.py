"""The ``mlexplore`` command line: the toolkit's jobs without a notebook.

    mlexplore datasets                       list the built-in datasets
    mlexplore generate NAME --n N --out F    generate one and save it
    mlexplore info FILE                      summary table of a dataset file
    mlexplore demo                           the main demo on built-in data
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
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 success, 1 bad input, 130 interrupted)."""
    from .errors import InputError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputError, FileNotFoundError) as exc:
        print(f"mlexplore {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlexplore {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
