"""The CLI's commands are library calls: the same results from plain Python, the same defaults as
the library's signatures, and a cli.py of parsing and printing only."""

import ast
import contextlib
import inspect
import io
from pathlib import Path

import numpy as np
import pytest

import mlexplore.cli as cli
from mlexplore import InputError
from mlexplore.analysis import featurise
from mlexplore.cli import COMPARE_SPLIT, build_parser, main
from mlexplore.datasets import gold
from mlexplore.datasets.generate import generate_dataset
from mlexplore.demo import run_demo
from mlexplore.descriptors import G2, SymmetryFunctions, save_basis
from mlexplore.dft import DFTSettings
from mlexplore.dft.options import parse_kpts, parse_magmoms, parse_mixer
from mlexplore.io import read
from mlexplore.io.predictions import write_predictions
from mlexplore.io.text import parse_numbers, parse_pairs, parse_value
from mlexplore.models import GraphNet, LatticeMLP
from mlexplore.training import compare_tasks, train_potential
from mlexplore.viz import comparison_summary, featurisation_report, training_summary


def _run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    return rc, out.getvalue()


def _basis():
    return SymmetryFunctions([G2(eta, rs) for eta in (1.0, 4.0) for rs in np.linspace(2.2, 5.2, 7)], cutoff=5.5,
                             elements=["Au"])


def _default(func, name):
    return inspect.signature(func).parameters[name].default


# --- featurise --------------------------------------------------------------------------------------

def test_featurise_library_call_gives_what_the_cli_writes_and_prints(tmp_path):
    ds = gold(n_per_group=1, progress=False, cache=False)
    ds.save(tmp_path / "au.xyz")
    save_basis(_basis(), tmp_path / "b.json")
    rc, text = _run(["featurise", str(tmp_path / "au.xyz"), "--basis", str(tmp_path / "b.json"),
                     "--out", str(tmp_path / "cli.npz"), "--quiet"])
    assert rc == 0
    data = read(tmp_path / "au.xyz")
    result = featurise(data, _basis(), progress=False)
    path = result.save(tmp_path / "lib.npz")
    cli_file, lib_file = np.load(tmp_path / "cli.npz"), np.load(path)
    assert sorted(cli_file.files) == sorted(lib_file.files) == ["feature_names", "features", "numbers", "structure"]
    for key in cli_file.files:
        np.testing.assert_array_equal(cli_file[key], lib_file[key])
    np.testing.assert_allclose(result.features, _basis().compute(data).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(result.structure, np.repeat(np.arange(len(data)), data.n_atoms))
    # the printed report is the library's
    assert result.report.summary() in text
    ratios = ", ".join(f"PC{k + 1} {v:.1%}" for k, v in enumerate(result.pca.explained_variance_ratio))
    assert ratios in text and len(result.pca.explained_variance_ratio) == 5
    assert f"{data.n_atoms.sum()} atoms × 14 features (custom;" in result.summary()
    # the report: correlations and the two PCA maps
    page = featurisation_report(tmp_path / "f.html", result, data, "features")
    assert page.read_text().count('class="plotly-graph-div"') == 2 and "Correlations" in page.read_text()


def test_featurise_names_a_preset_and_refuses_spin_terms_without_moments():
    ds = gold(n_per_group=1, progress=False, cache=False)[:3]
    assert featurise(ds, "loeffler-au", progress=False).basis == "loeffler-au"
    with pytest.raises(InputError, match="spin terms need per-atom magnetic moments"):
        featurise(ds, "bloore-fe-sannip", progress=False)


# --- generate, evaluate, train, compare --------------------------------------------------------------

def test_generate_library_call_equals_the_cli(tmp_path):
    assert main(["generate", "lattice_alloy", "--n", "1", "--param", "pair=AgPd", "--param", "compositions=0,16,32",
                 "--out", str(tmp_path / "a.npz"), "--quiet"]) == 0
    ds = generate_dataset("lattice_alloy", n=1, pair="AgPd", compositions=(0, 16, 32), progress=False)
    again = read(tmp_path / "a.npz")
    assert again.formulas == ds.formulas == ["Ag32", "Ag16Pd16", "Pd32"]
    np.testing.assert_allclose(again.label("energy"), ds.label("energy"))
    with pytest.raises(InputError, match="unknown dataset 'nothing'"):
        generate_dataset("nothing")
    with pytest.raises(InputError, match="colour"):
        generate_dataset("gold", colour="red", progress=False)


def test_training_summary_is_what_train_prints(tmp_path):
    ds = gold(n_per_group=2, progress=False, cache=False)
    ds.save(tmp_path / "au.xyz")
    rc, text = _run(["train", str(tmp_path / "au.xyz"), "--basis", "loeffler-au", "--out", str(tmp_path / "m.pt"),
                     "--epochs", "2", "--energy-only", "--quiet", "--device", "cpu"])
    assert rc == 0
    result = train_potential(read(tmp_path / "au.xyz"), "loeffler-au", forces=False, epochs=2, device="cpu",
                             progress=False)
    summary = training_summary(result)
    # everything but the wall time is the same
    strip = [line for line in summary.splitlines() if not line.startswith("trained in")]
    assert all(line in text for line in strip) and "split 8/1/1" in summary


def test_write_predictions_keeps_references_and_adds_predicted_labels(tmp_path):
    ds = gold(n_per_group=1, progress=False, cache=False)[:3]
    pred = {"energy": ds.label("energy") + 1.0, "forces": ds.label("forces") * 0.5, "energies": np.zeros(3)}
    names = write_predictions(tmp_path / "p.extxyz", ds, pred)
    back = read(tmp_path / "p.extxyz")
    assert names == ["energy_predicted", "forces_predicted"]
    np.testing.assert_allclose(back.label("energy_predicted"), ds.label("energy") + 1.0)
    np.testing.assert_allclose(back.label("forces_predicted"), ds.label("forces") * 0.5)
    np.testing.assert_allclose(back.label("energy"), ds.label("energy"))


def test_comparison_summary_labels_rows_and_names_the_hopeless_ones():
    rows = [{"tasks": "a", "n_tasks": 1, "target": "a", "rmse_mean": 1.0, "rmse_std": 0.1, "r2_mean": 0.9,
             "r2_std": 0.01, "seconds_mean": 1.0, "fom": 1.0, "n_runs": 2},
            {"tasks": "a+b", "n_tasks": 2, "target": "b", "rmse_mean": 2.0, "rmse_std": 0.2, "r2_mean": -0.5,
             "r2_std": 0.1, "seconds_mean": 2.0, "fom": 0.25, "n_runs": 2}]
    text = comparison_summary(rows)
    assert "STL a" in text and "MTL a+b" in text and "R² 0.9000 ± 0.01" in text
    assert "no better than predicting the mean (R² ≤ 0): a+b → b" in text


# --- defaults from one place ---------------------------------------------------------------------------

def _args(*argv):
    return build_parser().parse_args(list(argv))


def _as_value(text):
    return tuple(float(t) for t in text.split(",")) if isinstance(text, str) and "," in text else text


def test_train_defaults_are_train_potentials():
    a = _args("train", "f.xyz", "--out", "m.pt", "--basis", "loeffler-au")
    for option, param in [("epochs", "epochs"), ("lr", "lr"), ("batch_size", "batch_size"), ("patience", "patience"),
                          ("activation", "activation"), ("force_weight", "force_weight"), ("seed", "seed"),
                          ("device", "device")]:
        assert getattr(a, option) == _default(train_potential, param), option
    assert tuple(int(h) for h in a.hidden.split(",")) == tuple(_default(train_potential, "hidden"))
    assert a.split is None  # train_potential's own fractions apply unless --test is given
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert f"(default {','.join(str(f) for f in _default(train_potential, 'fractions'))};" in text


def test_compare_defaults_are_compare_tasks_and_the_models():
    a = _args("compare", "f.xyz", "--targets", "x")
    assert a.runs == _default(compare_tasks, "n_runs") and a.epochs == _default(compare_tasks, "epochs")
    assert a.vary == _default(compare_tasks, "vary") and a.patience == _default(compare_tasks, "patience")
    assert a.seed == _default(compare_tasks, "seed") and a.device == _default(compare_tasks, "device")
    # not given: the library decides (the model's protocol lr, the network's width, layers and radius)
    assert a.lr is None and a.width is None and a.layers is None and a.cutoff is None
    from mlexplore.training import DEFAULTS
    text = " ".join(build_parser()._subparsers._group_actions[0].choices["compare"].format_help().split())
    assert f"graph radius, Å (default {_default(GraphNet, 'cutoff')})" in text
    assert f"(lattice, default {_default(LatticeMLP, 'width')})" in text
    assert f"Adam lr (default {DEFAULTS['graph'].lr:g} graph, {DEFAULTS['tasks'].lr:g} lattice)" in text
    assert DEFAULTS["tasks"].lr == _default(compare_tasks, "lr")  # lattice: the library's own default
    # the command's default model is the GraphNet: its split is 001's protocol, from the library's table

    assert _as_value(a.split) == _as_value(COMPARE_SPLIT) == DEFAULTS["graph"].fractions == (0.7, 0.15, 0.15)
    assert tuple(_default(compare_tasks, "fractions")) == (0.8, 0.1, 0.1)


def test_demo_featurise_generate_label_defaults_are_the_librarys():
    a = _args("demo")
    assert (a.n, a.runs, a.epochs, a.seed, a.report, a.device) == tuple(
        _default(run_demo, p) for p in ("n_per_composition", "n_runs", "epochs", "seed", "report", "device"))
    assert _args("featurise", "f", "--basis", "b", "--out", "o").device == _default(featurise, "device")
    assert _args("generate", "gold", "--out", "o").seed == _default(generate_dataset, "seed")
    a, s = _args("label", "f", "--out", "o"), DFTSettings()
    assert (a.ecut, a.kpt_density, a.smearing, a.maxiter) == (s.ecut, s.kpt_density, s.smearing, s.maxiter)


def test_every_option_that_shows_a_default_in_its_help_parses_to_it():
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            if action.help and "(default " in action.help and action.default not in (None, False):
                shown = action.help.rsplit("(default ", 1)[1].rstrip(")")
                assert shown == str(action.default), (name, action.dest)


# --- text parsers ------------------------------------------------------------------------------------

def test_text_parsers():
    assert parse_value("2,2,2") == (2, 2, 2) and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_numbers("25,25", "--hidden", int) == [25, 25]
    with pytest.raises(InputError, match="--hidden expects integers"):
        parse_numbers("25,x", "--hidden", int)
    assert parse_pairs(["pair=AgPd"], "--param") == {"pair": "AgPd"}
    assert parse_kpts("2,2,2") == (2, 2, 2) and parse_kpts(None) is None
    with pytest.raises(InputError, match="--kpts expects three integers"):
        parse_kpts("2,2", "--kpts")
    assert parse_mixer("dif:beta=0.05,nmaxold=5,weight=50") == {"kind": "dif", "beta": 0.05, "nmaxold": 5,
                                                                 "weight": 50.0}
    assert parse_magmoms(["Pt=0.3"])["Pt"] == 0.3 and parse_magmoms(None)["Fe"] == 3.0
    with pytest.raises(InputError, match="is not a number"):
        parse_magmoms(["Fe=big"], "--magmom")


# --- cli.py: parsing and printing only ------------------------------------------------------------------

def test_cli_module_is_short_and_imports_no_private_names():
    source = Path(cli.__file__).read_text()
    assert len(source.splitlines()) < 300
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            assert not any(part.startswith("_") for part in (node.module or "").split(".")), node.module
            assert not [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
