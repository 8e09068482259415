"""Every ``mlexplore`` command on bad input: exit status 2, one line on stderr that names the file or
option, no traceback, nothing written. A bug (any other exception): exit status 1, one line with the
exception's type and the ``--traceback`` hint; with ``--traceback`` the exception propagates."""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlexplore import cli
from mlexplore.cli import main
from mlexplore.datasets import gold
from mlexplore.datasets.generate import check_output_file
from mlexplore.errors import InputError, describe_error

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A good structures file, a binary one, a junk model, an empty directory; the cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    gold(n_per_group=1, progress=False, cache=False).save(tmp_path / "good.xyz")
    (tmp_path / "binary.xyz").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "junk.pt").write_text("not a model")
    (tmp_path / "dir").mkdir()
    return tmp_path


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


def _run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.err


BAD_INPUT = [  # (argv, what the one line must name); relative paths live in the `files` folder
    (["generate", "gold", "--n", "1", "--out", "dir", "--quiet"], "dir: is an existing directory; --out"),
    (["generate", "gold", "--n", "1", "--out", "dir/", "--quiet"], "is an existing directory; --out wants a file"),
    (["generate", "gold", "--n", "1", "--out", "structures", "--quiet"], "structures: --out"),
    (["generate", "gold", "--n", "1", "--out", "POSCAR", "--quiet"], "POSCAR: --out"),
    (["generate", "gold", "--n", "1", "--out", "a.cif.gz", "--quiet"], "a.cif.gz: --out"),
    (["generate", "nothing", "--out", "new.xyz", "--quiet"], "unknown dataset 'nothing'"),
    (["generate", "gold", "--param", "colour=red", "--out", "new.xyz", "--quiet"], "colour"),
    (["info", "missing.xyz"], "missing.xyz: no such file"),
    (["info", "binary.xyz"], "binary.xyz: is not UTF-8 text"),
    (["info", "good.xyz", "--format", "nosuchformat"], "good.xyz"),
    (["demo", "--n", "0", "--quiet", "--report", "demo.html"], "n_per_composition"),
    (["demo", "--report", "dir", "--quiet"], "dir: is an existing directory; --report"),
    (["label", "missing.xyz", "--out", "run.jsonl"], "missing.xyz"),
    (["label", "binary.xyz", "--out", "run.jsonl"], "binary.xyz"),
    (["label", "good.xyz", "--out", "run.jsonl", "--kpts", "2,2"], "--kpts expects three integers"),
    (["label", "good.xyz", "--out", "dir"], "dir: is an existing directory; --out"),
    (["label", "good.xyz", "--out", "run.jsonl", "--dataset", "dir"], "dir: is an existing directory; --dataset"),
    (["label", "good.xyz", "--out", "run.jsonl", "--dataset", "labelled.txt"], "labelled.txt: --dataset"),
    (["train", "binary.xyz", "--basis", "loeffler-au", "--out", "m.pt"], "binary.xyz"),
    (["train", "good.xyz", "--basis", "loeffler-au", "--out", "dir"], "dir: is an existing directory; --out"),
    (["train", "good.xyz", "--basis", "loeffler-au", "--out", "m.pt", "--report", "dir"], "dir: is an existing"),
    (["train", "good.xyz", "--basis", "nope", "--out", "m.pt"], "--basis 'nope' is neither a preset"),
    (["train", "good.xyz", "--basis", "loeffler-au", "--out", "m.pt", "--test", "missing.xyz"], "missing.xyz"),
    (["train", "good.xyz", "--basis", "loeffler-au", "--out", "m.pt", "--hidden", "25,x"], "--hidden"),
    (["evaluate", "missing.pt", "good.xyz"], "missing.pt"),
    (["evaluate", "junk.pt", "good.xyz"], "junk.pt"),
    (["evaluate", "junk.pt", "good.xyz", "--predictions", "dir"], "dir: is an existing directory; --predictions"),
    (["compare", "binary.xyz", "--targets", "energy"], "binary.xyz"),
    (["compare", "good.xyz", "--targets", "nope", "--quiet"], "target 'nope'"),
    (["compare", "good.xyz", "--targets", "energy", "--resume", "dir"], "dir: is an existing directory; --resume"),
    (["compare", "good.xyz", "--targets", "energy", "--split", "0.5,x"], "--split"),
    (["featurise", "missing.xyz", "--basis", "loeffler-au", "--out", "f.npz"], "missing.xyz"),
    (["featurise", "good.xyz", "--basis", "loeffler-au", "--out", "dir"], "dir: is an existing directory; --out"),
    (["featurise", "good.xyz", "--basis", "bloore-fe-sannip", "--out", "f.npz"], "spin terms"),
    (["learn", "missing.xyz", "--basis", "loeffler-au", "--explore", "rattle", "--out", "run"], "missing.xyz"),
    (["learn", "good.xyz", "--basis", "loeffler-au", "--out", "run", "--quiet"], "no explorer"),
    (["learn", "good.xyz", "--basis", "loeffler-au", "--explore", "walk", "--out", "run"], "unknown explorer 'walk'"),
    (["learn", "good.xyz", "--basis", "loeffler-au", "--explore", "md", "--out", "run", "--labeller", "vasp"],
     "unknown labeller 'vasp'"),
]


@pytest.mark.parametrize("argv, names", BAD_INPUT, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _) in
                                                       enumerate(BAD_INPUT)])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(files, capsys, argv, names):
    before = _tree(files)
    rc, err = _run(argv, capsys)
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert err.startswith(f"mlexplore {argv[0]}: error: ") and names in err
    assert "Traceback" not in err and "internal error" not in err
    assert _tree(files) == before  # nothing written, nothing left behind (no temporary files either)


def test_every_command_has_a_bad_input_case():
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(sub.choices)
    assert commands - {argv[0] for argv, _ in BAD_INPUT} == {"datasets"}  # (it takes no input: usage below)


@pytest.mark.parametrize("argv, names", [
    (["datasets", "--n", "3"], "--n"),
    (["generate", "gold"], "--out"),
    (["info", "good.xyz", "--bogus"], "--bogus"),
    (["compare", "good.xyz", "--targets", "energy", "--model", "tree"], "--model"),
    (["train", "good.xyz", "--basis", "loeffler-au", "--out", "m.pt", "--epochs", "many"], "--epochs"),
])
def test_usage_errors_stay_argparse_exit_2(files, capsys, argv, names):
    before = _tree(files)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: mlexplore")
    assert names in err.splitlines()[-1] and "Traceback" not in err
    assert _tree(files) == before


def test_generate_refuses_an_existing_directory_and_writes_nothing_into_it(files, capsys):
    """An existing directory would have received LSMS files (io.write's choice for a directory)."""
    rc, err = _run(["generate", "gold", "--n", "1", "--out", str(files / "dir"), "--quiet"], capsys)
    assert rc == 2 and str(files / "dir") in err and ".xyz" in err and list((files / "dir").iterdir()) == []
    # a file name works; an existing file of that format is replaced
    for _ in range(2):
        assert main(["generate", "gold", "--n", "1", "--out", str(files / "dir" / "au.xyz"), "--quiet"]) == 0
    assert sorted(p.name for p in (files / "dir").iterdir()) == ["au.xyz"]


def test_check_output_file():
    for name in ("a.xyz", "a.extxyz.gz", "a.npz", "input.data", "b.data", "a.traj", "a.cif"):
        check_output_file(name)
    check_output_file("model.pt", structures=False)  # any other output: only a directory is refused
    for name, message in [("a.txt", "no format that holds many"), ("POSCAR", "ASE's 'vasp' holds one"),
                          ("OUTCAR", "ASE cannot write"), ("a.cif.gz", "only extxyz is written compressed"),
                          (".", "is an existing directory")]:
        with pytest.raises(InputError, match=message) as exc:
            check_output_file(name, "--dataset")
        assert exc.value.path == name and "--dataset" in str(exc.value)
    with pytest.raises(InputError, match="is an existing directory; --out wants a file name$"):
        check_output_file(".", structures=False)


# --- a bug: exit 1, one line, the --traceback hint -------------------------------------------------------

class _Boom:
    def __iter__(self):
        raise RuntimeError("boom\n  second line")


def _raising(original):
    """``original`` (its signature kept: the parser reads the defaults from it) raising a RuntimeError."""
    @functools.wraps(original)
    def boom(*args, **kwargs):
        raise RuntimeError("boom\n  second line")

    return boom


INTERNAL = [  # (argv, the name in mlexplore.cli the command calls, replaced by one that raises)
    (["datasets"], "REGISTRY"),
    (["generate", "gold", "--out", "new.xyz", "--quiet"], "generate_dataset"),
    (["info", "good.xyz"], "read"),
    (["demo", "--quiet", "--no-report"], "run_demo"),
    (["label", "good.xyz", "--out", "run.jsonl", "--quiet"], "label"),
    (["train", "good.xyz", "--basis", "loeffler-au", "--out", "m.pt", "--quiet"], "train_potential"),
    (["evaluate", "junk.pt", "good.xyz"], "Potential"),
    (["compare", "good.xyz", "--targets", "energy", "--quiet"], "compare_tasks"),
    (["featurise", "good.xyz", "--basis", "loeffler-au", "--out", "f.npz", "--quiet"], "featurise"),
    (["learn", "good.xyz", "--basis", "loeffler-au", "--explore", "rattle", "--out", "run", "--quiet"],
     "ActiveLearning"),
]


@pytest.mark.parametrize("argv, name", INTERNAL, ids=[a[0] for a, _ in INTERNAL])
def test_a_bug_is_one_line_exit_1_with_the_traceback_hint(files, capsys, monkeypatch, argv, name):
    original = getattr(cli, name)
    monkeypatch.setattr(cli, name, _Boom() if name == "REGISTRY" else type("P", (), {
        "load": staticmethod(_raising(original.load))}) if name == "Potential" else _raising(original))
    before = _tree(files)
    rc, err = _run(argv, capsys)
    assert rc == 1
    assert err == (f"mlexplore {argv[0]}: internal error: RuntimeError: boom second line "
                   "(rerun with --traceback for the full traceback)\n")
    assert _tree(files) == before
    # --traceback, before or after the command: the exception itself, with its traceback
    for flagged in (["--traceback", *argv], [*argv, "--traceback"]):
        with pytest.raises(RuntimeError, match="boom"):
            main(flagged)


def test_traceback_also_raises_bad_input(files):
    with pytest.raises(InputError, match="is not UTF-8 text"):
        main(["--traceback", "info", "binary.xyz"])
    with pytest.raises(FileNotFoundError):
        main(["info", "missing.xyz", "--traceback"])


def test_interrupt_exits_130(files, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "read", interrupted)
    assert _run(["info", "good.xyz"], capsys) == (130, "mlexplore info: interrupted\n")


@pytest.mark.parametrize("exc, status, line", [
    (PermissionError(13, "Permission denied", "secret.xyz"), 2, "secret.xyz: Permission denied"),
    # a failed rename of a temporary file names the user's file, not the temporary one
    (IsADirectoryError(21, "Is a directory", ".out.xyz.tmp", None, "out.xyz"), 2, "out.xyz: Is a directory"),
    (OSError(28, "No space left on device"), 2, "[Errno 28] No space left on device"),
    (ModuleNotFoundError("No module named 'gpaw'", name="gpaw"), 2, "No module named 'gpaw'"),
    (ImportError("GPAW is not installed: install mlexplore[dft]"), 2, "GPAW is not installed: install mlexplore[dft]"),
    (ImportError("cannot import name 'x' from 'mlexplore.io'", name="mlexplore.io"), 1,  # (a bug of ours)
     "ImportError: cannot import name 'x' from 'mlexplore.io'"),
    (InputError("'abc' is not a number", path="a.txt", line=5), 2, "a.txt, line 5: 'abc' is not a number"),
    (ValueError("bad\nthing"), 1, "ValueError: bad thing"),
    (RuntimeError(), 1, "RuntimeError"),
    (FileNotFoundError(), 2, "FileNotFoundError"),
])
def test_what_counts_as_bad_input(files, capsys, monkeypatch, exc, status, line):
    bad, text = describe_error(exc)
    assert (bad, text) == (status == 2, line)

    def raising(*args, **kwargs):
        raise exc

    monkeypatch.setattr(cli, "read", raising)
    rc, err = _run(["info", "good.xyz"], capsys)
    assert rc == status and len(err.splitlines()) == 1 and line in err


def test_the_installed_command_on_a_binary_file(tmp_path):
    """The real console script, in a process of its own: exit status 2, one line, no traceback."""
    binary = tmp_path / "binary.xyz"
    binary.write_bytes(bytes(range(256)) * 4)
    script = Path(sys.executable).with_name("mlexplore")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "mlexplore.cli"]
    res = subprocess.run([*cmd, "info", str(binary)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"mlexplore info: error: {binary}: is not UTF-8")
    assert "Traceback" not in res.stderr
