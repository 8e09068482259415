import re
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


def test_demo_runs_the_whole_path_and_writes_a_report(capsys, tmp_path):
    report = tmp_path / "report.html"
    assert main(["demo", "--n", "4", "--runs", "2", "--epochs", "3", "--quiet", "--device", "cpu",
                 "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "mixing_energy" in out and "stratified split" in out and "PC1 + PC2" in out
    assert "STL mixing_energy" in out and "MTL mixing_energy+energies" in out  # the comparison table
    page = report.read_text()
    assert page.count('class="plotly-graph-div"') >= 10  # every figure is in the page
    # self-contained: plotly.js is inline (MBs), no script is loaded from the network
    assert len(page) > 3_000_000 and not re.search(r'<script[^>]*src="https?:', page)
    assert "Test-error PDFs, mixing_energy" in page


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
