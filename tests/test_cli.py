import subprocess
import sys

import pytest

from mlexplore.cli import main
from mlexplore.io import read


def test_datasets_lists_builtins(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "lattice_alloy" in out and "gold" in out and "ising_lattice" in out


def test_generate_then_info(tmp_path, capsys):
    out = tmp_path / "au.xyz"
    assert main(["generate", "gold", "--n", "2", "--out", str(out), "--quiet"]) == 0
    assert len(read(out)) == 10
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "structures    10" in text and "surface-100 (2)" in text


def test_generate_with_params(tmp_path):
    out = tmp_path / "agpd.npz"
    assert main(["generate", "lattice_alloy", "--n", "1", "--param", "pair=AgPd", "--param",
                 "compositions=0,16,32", "--out", str(out), "--quiet"]) == 0
    assert read(out).formulas == ["Ag32", "Ag16Pd16", "Pd32"]


def test_demo_prints_summary_and_split(capsys):
    assert main(["demo", "--n", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mixing_energy" in out and "train" in out and "compositions" in out


@pytest.mark.parametrize("argv, message", [
    (["info", "/nonexistent/file.xyz"], "no such file"),
    (["generate", "nothing", "--out", "x.xyz"], "unknown dataset 'nothing'"),
    (["generate", "gold", "--param", "colour=red", "--out", "x.xyz", "--quiet"], "colour"),
    (["generate", "lattice_alloy", "--param", "pair=FePt", "--out", "x.xyz", "--quiet"], "EMT has no parameters"),
])
def test_errors_exit_1_with_message(capsys, argv, message):
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_help_on_every_command():
    for cmd in ([], ["datasets"], ["generate"], ["info"], ["demo"]):
        res = subprocess.run([sys.executable, "-m", "mlexplore.cli", *cmd, "--help"], capture_output=True,
                             text=True)
        assert res.returncode == 0 and "usage: mlexplore" in res.stdout
