import importlib
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
def test_errors_exit_2_with_message(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_on_every_command():
    for cmd in ([], ["datasets"], ["generate"], ["info"], ["demo"]):
        res = subprocess.run([sys.executable, "-m", "mlexplore.cli", *cmd, "--help"], capture_output=True,
                             text=True)
        assert res.returncode == 0 and "usage: mlexplore" in res.stdout


# --- mlexplore label (DFT); GPAW replaced by a stand-in so these run everywhere -------------------

import numpy as np  # noqa: E402
from dft_stand_in import FakeDFT  # noqa: E402


@pytest.fixture
def stand_in_gpaw(monkeypatch):
    label_module = importlib.import_module("mlexplore.dft.label")
    monkeypatch.setattr(label_module, "_require_gpaw", lambda: None)
    monkeypatch.setattr(label_module, "gpaw_calculator", lambda settings, atoms, kpts, txt: FakeDFT())
    FakeDFT.calls = 0


def test_label_writes_records_and_dataset_resumes_and_reports_failures(tmp_path, capsys, stand_in_gpaw):
    from mlexplore.dft import read_records
    from mlexplore.dft.configs import fe_spin_configurations

    structures = fe_spin_configurations(n_bcc2=2, n_bcc4=1, n_fcc4=0, n_bcc16=1)
    src, rec, out = tmp_path / "in.extxyz", tmp_path / "run.jsonl", tmp_path / "labelled.extxyz"
    structures.save(src)
    argv = ["label", str(src), "--out", str(rec), "--dataset", str(out), "--kpts", "2,2,2", "--ecut", "300",
            "--magmom", "Pt=0.3", "--mixer", "dif:beta=0.05,nmaxold=5,weight=50", "--no-hirshfeld", "--quiet"]
    with pytest.warns(UserWarning, match="failed"):
        assert main(argv) == 0
    text = capsys.readouterr().out
    n = len(structures)
    n16 = sum(1 for k in structures.n_atoms if k == 16)
    assert n16 >= 1 and f"{n - n16} of {n} structures labelled" in text
    assert "failed: structure" in text and "did not converge" in text
    records = read_records(rec)
    assert len(records) == n and FakeDFT.calls == n
    s = records[0]["settings"]
    assert s["ecut"] == 300 and s["kpts"] == [2, 2, 2] and s["hirshfeld"] is False
    assert s["magmoms"]["Pt"] == 0.3 and s["magmoms"]["Fe"] == 3.0
    assert s["mixer"] == {"kind": "dif", "beta": 0.05, "nmaxold": 5, "weight": 50.0}
    labelled = read(out)
    assert len(labelled) == n - n16
    first = structures[0]
    np.testing.assert_allclose(labelled.label("energy")[0], (first.positions ** 2).sum())
    np.testing.assert_allclose(labelled.per_structure("magmoms")[0], 0.9 * first.get_initial_magnetic_moments())
    # the same command again computes nothing and appends nothing, forwards or backwards
    assert main(argv) == 0
    assert main(argv + ["--reverse"]) == 0
    assert FakeDFT.calls == n and len(read_records(rec)) == n


@pytest.mark.parametrize("extra, message", [
    (["--magmom", "Xx=1"], "--magmom expects ELEMENT=MOMENT"),
    (["--magmom", "Fe=big"], "is not a number"),
    (["--kpts", "2,2"], "--kpts expects three integers"),
    (["--mixer", "dif:alpha=1"], "--mixer"),
    (["--mixer", "fancy"], "mixer kind"),
    (["--ecut", "-5"], "ecut must be positive"),
])
def test_label_bad_options_name_the_option(tmp_path, capsys, stand_in_gpaw, extra, message):
    from ase.build import bulk

    src = tmp_path / "fe.extxyz"
    bulk("Fe", "bcc", a=2.83, cubic=True).write(src)
    assert main(["label", str(src), "--out", str(tmp_path / "run.jsonl"), "--quiet", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run.jsonl").exists() and FakeDFT.calls == 0


def test_label_without_gpaw_says_how_to_install_and_records_nothing(tmp_path, capsys, monkeypatch):
    from ase.build import bulk

    def missing():
        raise ImportError("GPAW is not installed: install the extra mlexplore[dft] with scripts/install_gpaw.sh")

    monkeypatch.setattr(importlib.import_module("mlexplore.dft.label"), "_require_gpaw", missing)
    src = tmp_path / "fe.extxyz"
    bulk("Fe", "bcc", a=2.83, cubic=True).write(src)
    assert main(["label", str(src), "--out", str(tmp_path / "run.jsonl"), "--quiet"]) == 2
    assert "mlexplore[dft]" in capsys.readouterr().err
    assert not (tmp_path / "run.jsonl").exists()


def test_label_reverse_starts_from_the_last_structure(tmp_path, stand_in_gpaw):
    from ase.build import bulk

    from mlexplore.dft import read_records

    src = tmp_path / "fe.extxyz"
    cells = [bulk("Fe", "bcc", a=a, cubic=True) for a in (2.80, 2.83, 2.86)]
    from ase.io import write

    write(src, cells)
    assert main(["label", str(src), "--out", str(tmp_path / "run.jsonl"), "--reverse", "--no-hirshfeld",
                 "--quiet"]) == 0
    assert [r["index"] for r in read_records(tmp_path / "run.jsonl")] == [2, 1, 0]
