"""BPNN training: accuracy on EMT gold, forces, checkpoints, interruption, determinism, errors."""

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from ase.units import GPa

from mlexplore import InputError, StructureDataset
from mlexplore.analysis import r2, rmse
from mlexplore.data import random_split
from mlexplore.datasets import gold, lattice_alloy
from mlexplore.descriptors import G2, G4, G9, SymmetryFunctions
from mlexplore.models import BPNN
from mlexplore.training import Potential, TrainingError, fit, load_model, predict, save_model


def radial_descriptor(elements=("Au",)):
    terms = [G2(eta, rs) for eta in (1.0, 4.0) for rs in np.linspace(2.2, 5.2, 7)]
    return SymmetryFunctions(terms, cutoff=5.5, elements=list(elements))


@pytest.fixture(scope="module")
def trained_gold(tmp_path_factory):
    ds = gold(n_per_group=12, progress=False)
    train, val, test = random_split(ds, (0.7, 0.15, 0.15), seed=0)
    torch.manual_seed(0)
    model = BPNN(radial_descriptor(), hidden=(16, 16), activation="tanh")
    ckpt = tmp_path_factory.mktemp("ckpt")
    history = fit(model, train, val, epochs=300, lr=5e-3, batch_size=8, patience=60, progress=False,
                  device="cpu", checkpoint_dir=ckpt)
    return model, history, test, ckpt


def test_bpnn_reaches_emt_accuracy_on_gold(trained_gold):
    model, history, test, _ = trained_gold
    p = predict(model, test)
    e_rmse = rmse(test.label("energy") / test.n_atoms, p["energy"] / test.n_atoms) * 1000
    f_rmse = rmse(test.label("forces"), p["forces"])
    assert e_rmse < 10.0, f"energy RMSE {e_rmse:.1f} meV/atom"
    assert f_rmse < 0.15, f"force RMSE {f_rmse:.3f} eV/Å"
    assert r2(test.label("forces"), p["forces"]) > 0.95
    assert history.val_loss[history.best_epoch] == min(history.val_loss)
    assert len(history.metrics["val_forces_rmse"]) == len(history.epoch)


def test_save_load_predicts_identical_numbers(trained_gold, tmp_path):
    model, _, test, ckpt = trained_gold
    save_model(model, tmp_path / "m.pt", extra={"note": "test"})
    again, extra = load_model(tmp_path / "m.pt", return_extra=True)
    a, b = predict(model, test), predict(again, test)
    np.testing.assert_array_equal(a["energy"], b["energy"])
    np.testing.assert_array_equal(a["forces"], b["forces"])
    assert extra["note"] == "test"
    best = load_model(ckpt / "best.pt")  # the checkpoint written during training is the best model
    np.testing.assert_array_equal(predict(best, test)["energy"], a["energy"])


def test_ase_calculator_equation_of_state(trained_gold):
    model, _, _, _ = trained_gold
    calc = Potential(model).as_ase_calculator()

    def eos(c):
        vols, energies = [], []
        for a in np.linspace(3.95, 4.17, 9):
            atoms = bulk("Au", "fcc", a=a, cubic=True)
            atoms.calc = c
            vols.append(atoms.get_volume())
            energies.append(atoms.get_potential_energy())
        v0, e0, b = EquationOfState(vols, energies).fit()
        return (4 * v0) ** (1 / 3) / 4 ** (1 / 3), b / GPa

    a_nn, b_nn = eos(calc)
    a_emt, b_emt = eos(EMT())
    assert a_nn == pytest.approx(a_emt, rel=0.01)
    assert b_nn == pytest.approx(b_emt, rel=0.25)
    # forces and stress from the calculator agree with finite differences of its energy
    atoms = bulk("Au", "fcc", a=4.08, cubic=True)
    atoms.rattle(0.05, seed=3)
    atoms.calc = calc
    from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

    np.testing.assert_allclose(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-5), atol=1e-6)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-6), atol=1e-7)
    assert np.abs(atoms.get_stress()).max() > 1e-4  # a strained cell: a real comparison


def test_forces_are_minus_energy_gradient():
    torch.manual_seed(1)
    sf = SymmetryFunctions([G2(1.0, 2.5), G2(0.5, 3.5), G4(0.02, 1, -1), G4(0.01, 2, 1)], cutoff=5.0,
                           elements=["Cu", "Au"])
    model = BPNN(sf, hidden=(8,), activation="softplus").double()
    atoms = lattice_alloy("CuAu", n_per_composition=1, compositions=[10], rattle=0.1, progress=False)
    batch = sf.prepare(atoms)
    f = model.energy_and_forces(batch)["forces"].detach()
    h = 1e-5
    for a, c in [(0, 0), (5, 2), (17, 1)]:
        plus, minus = batch["positions"].clone(), batch["positions"].clone()
        plus[a, c] += h
        minus[a, c] -= h
        with torch.no_grad():
            ep = model({**batch, "positions": plus})["energy"].sum()
            em = model({**batch, "positions": minus})["energy"].sum()
        assert float(f[a, c]) == pytest.approx(-(ep - em).item() / (2 * h), rel=1e-6, abs=1e-9)


def test_forces_need_a_gradient_path():
    sf = SymmetryFunctions([G2(1.0, 2.5)], cutoff=5.0, elements=["Cu", "Au"])
    model = BPNN(sf, hidden=(4,)).double()
    batch = sf.prepare(lattice_alloy("CuAu", n_per_composition=1, compositions=[5], progress=False))
    with torch.no_grad(), pytest.raises(InputError, match="autograd, which is switched off"):
        model.energy_and_forces(batch)


def _small_alloy():
    ds = lattice_alloy("CuAu", n_per_composition=2, rattle=0.05, progress=False)
    return random_split(ds, (0.8, 0.2), seed=0)


def test_same_seed_same_history():
    train, val = _small_alloy()
    runs = []
    for _ in range(2):
        torch.manual_seed(5)
        model = BPNN(radial_descriptor(("Cu", "Au")), hidden=(8,), shared=True)
        h = fit(model, train, val, epochs=4, lr=1e-2, batch_size=8, seed=3, progress=False, device="cpu")
        runs.append(h)
    assert runs[0].train_loss == runs[1].train_loss and runs[0].val_loss == runs[1].val_loss


def test_interrupted_fit_keeps_best_checkpoint(tmp_path):
    train, val = _small_alloy()
    torch.manual_seed(0)
    model = BPNN(radial_descriptor(("Cu", "Au")), hidden=(8,))

    def stop_at_5(epoch, history):
        if epoch == 5:
            raise KeyboardInterrupt

    h = fit(model, train, val, epochs=50, lr=1e-2, batch_size=8, progress=False, device="cpu",
            checkpoint_dir=tmp_path, callback=stop_at_5)
    assert h.interrupted and len(h.epoch) == 6  # epochs 0–5 finished before the interrupt
    best = load_model(tmp_path / "best.pt")
    np.testing.assert_array_equal(predict(best, val)["energy"], predict(model, val)["energy"])
    assert (tmp_path / "last.pt").exists()
    assert not list(tmp_path.glob("*.tmp*"))  # atomic writes leave nothing behind


def test_per_atom_head_learns_emt_atomic_energies():
    train, val = _small_alloy()
    torch.manual_seed(0)
    model = BPNN(radial_descriptor(("Cu", "Au")), hidden=(16,), atom_outputs=["energies"])
    h = fit(model, train, val, targets=["energy", "energies"], epochs=60, lr=1e-2, batch_size=8, progress=False,
            device="cpu")
    p = predict(model, val, forces=False)
    assert "energies" in p and p["energies"].shape == (val.n_total_atoms,)
    assert r2(val.label("energies"), p["energies"]) > 0.8
    assert h.metrics["val_energies_rmse"][-1] < h.metrics["val_energies_rmse"][0]


def test_clear_errors():
    train, val = _small_alloy()
    model = BPNN(radial_descriptor(("Cu", "Au")), hidden=(4,))
    with pytest.raises(InputError, match="target 'charges' is not in the training set"):
        fit(model, train, targets=["energy", "charges"], epochs=1, progress=False)
    with pytest.raises(InputError, match="validation set is empty"):
        fit(model, train, val[[]], epochs=1, progress=False)
    with pytest.raises(InputError, match="no output for target 'mixing_energy'"):
        fit(model, train, targets=["mixing_energy"], epochs=1, progress=False)
    with pytest.raises(InputError, match="element-resolved"):
        BPNN(SymmetryFunctions([G2(1.0)], cutoff=4.0))
    with pytest.raises(InputError, match="unknown activation"):
        BPNN(radial_descriptor(), activation="sigmoidish")
    bad = train.copy()
    bad.add_label("energy", bad.label("energy") * 1e200, per_atom=False)
    with pytest.raises(TrainingError, match="loss became .* at epoch 0, batch 0"):
        fit(BPNN(radial_descriptor(("Cu", "Au")), hidden=(4,)), bad, epochs=2, lr=1e3, normalise=False,
            progress=False, device="cpu")


def test_classwise_blocks_and_pca_initialisation():
    from mlexplore.descriptors import G4, tpi_classwise

    sf = SymmetryFunctions([G2(1.0, 2.5), G2(1.0, 3.5), G2(0.5, 4.5), G4(0.01, 1, -1), G4(0.02, 2, 1)],
                           cutoff=5.0, elements=["Cu", "Au"])
    model = BPNN(sf, hidden=(25, 25), classwise=True)
    net = model.nets[0]
    n_r, n_a = 3 * 2, 2 * 3  # element-resolved radial and angular columns
    assert [len(g) for g in net.groups] == [n_r, n_a]
    assert net.first_layer.in_features == sf.n_features + n_r + n_a
    n_params = sum(p.numel() for p in net.parameters())
    i = sf.n_features
    # 002 §3.2.3's text: the first dense layer sees all inputs *and* the class outputs (2i inputs);
    # eq 3.27 counts that layer as (i + 1) h1, i.e. as if it saw i inputs — 25·i parameters fewer.
    assert n_params == (n_r + 1) * n_r + (n_a + 1) * n_a + (2 * i + 1) * 25 + 26 * 25 + 26
    assert n_params / i == pytest.approx(tpi_classwise(n_r, n_a, 0, (25, 25)) + 25)
    train, val = _small_alloy()
    torch.manual_seed(0)
    h = fit(model, train, val, targets=["energy"], epochs=3, progress=False, device="cpu", pca_init=4)
    assert len(h.epoch) == 3
    # PCA initialisation: the first neurons project onto orthonormal principal axes
    fresh = BPNN(sf, hidden=(8,)).double()
    feats = sf.compute(train)
    fresh.feature_shift.copy_(feats.mean(0))
    fresh.feature_scale.copy_(feats.std(0).clamp(min=1e-9))
    ratios = fresh.init_from_pca(feats, 3)
    w = fresh.nets[0].first_layer.weight.detach()[:3]
    assert torch.allclose(w @ w.T, torch.eye(3, dtype=w.dtype), atol=1e-10)
    assert ratios[0] >= ratios[1] >= ratios[2] and ratios.sum() <= 1


def test_spin_aware_bpnn_trains_and_tells_fm_from_afm():
    """A BPNN on geometry + spin terms: the moments reach the descriptor in training, prediction and
    the ASE calculator, and the same geometry with FM and AFM moments gets different energies."""
    from mlexplore.descriptors import G2, SpinPair, SpinSelf

    rng = np.random.default_rng(0)
    images = []
    for k in range(24):
        a = bulk("Fe", "bcc", a=2.83 * (1 + 0.01 * rng.normal()), cubic=True).repeat((2, 1, 1))
        afm = k % 2 == 1
        m = np.array([2.2, -2.2, 2.2, -2.2]) if afm else np.full(4, 2.2)
        a.arrays["magmoms"] = m
        # a toy energy: a geometric part plus an exchange-like spin part (AFM costs 0.1 eV/atom)
        a.info["energy"] = -8.0 * len(a) + 0.5 * (a.get_volume() / len(a) - 11.3) ** 2 + (0.4 if afm else 0.0)
        images.append(a)
    ds = StructureDataset.from_atoms(images)
    sf = SymmetryFunctions([G2(1.0, 2.5), G2(1.0, 3.0), SpinSelf(1), SpinPair("dot", 1)], cutoff=4.0,
                           elements=["Fe"])
    model = BPNN(sf, hidden=(16,))
    train, val = ds[:18], ds[18:]
    history = fit(model, train, val, targets=["energy"], epochs=300, lr=3e-3, batch_size=6, progress=False)
    assert history.best_val_loss < 0.2 * history.val_loss[0]
    pred = predict(model, val, forces=False)["energy"]
    assert np.sqrt(np.mean((pred - val.label("energy")) ** 2)) < 0.1  # the AFM offset (0.4 eV) is learned
    fm, afm = images[0].copy(), images[0].copy()
    afm.arrays["magmoms"] = np.array([2.2, -2.2, 2.2, -2.2])
    e = [predict(model, StructureDataset.from_atoms([x]), forces=False)["energy"][0] for x in (fm, afm)]
    assert e[1] - e[0] == pytest.approx(0.4, abs=0.1)
    calc_atoms = afm.copy()
    calc_atoms.set_initial_magnetic_moments(afm.arrays["magmoms"])
    del calc_atoms.arrays["magmoms"]
    calc_atoms.calc = Potential(model).as_ase_calculator()
    assert calc_atoms.get_potential_energy() == pytest.approx(e[1], abs=1e-9)


def test_energy_only_training_featurises_once_with_the_same_numbers():
    """Energy-only batches carry the descriptor values computed once (no forces from them): the
    energies equal those from featurising every batch, with and without angular and spin terms."""
    import importlib

    from mlexplore.descriptors import SpinPair

    prepared_set = importlib.import_module("mlexplore.training.fit")._PreparedSet
    data = lattice_alloy("CuAu", n_per_composition=1, rattle=0.1, progress=False)[:20]
    data.add_label("magmoms", np.random.default_rng(0).normal(size=data.n_atoms.sum()), per_atom=True)
    sf = SymmetryFunctions([G2(0.5, 0.0), G2(1.0, 2.5), G4(0.05, 1.0, 1.0), SpinPair("dot", 1)], cutoff=4.5,
                           elements=["Cu", "Au"])
    torch.manual_seed(0)
    model = BPNN(sf, hidden=(6,)).to(dtype=torch.float64)
    fresh = prepared_set(model, data, "cpu", torch.float64, ["energy"], cache_features=False)
    cached = prepared_set(model, data, "cpu", torch.float64, ["energy"], cache_features=True, chunk=7)
    torch.testing.assert_close(cached.features, sf.compute(data, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    idx = torch.tensor([13, 2, 19, 7, 8])
    (b_fresh, l_fresh), (b_cached, l_cached) = fresh.batch(idx), cached.batch(idx)
    assert "features" in b_cached and "positions" not in b_cached
    torch.testing.assert_close(model(b_cached)["energy"], model(b_fresh)["energy"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(l_cached["energy"], l_fresh["energy"])
    with pytest.raises(InputError, match="precomputed features"):
        model.energy_and_forces(b_cached)
    # and through fit: the same history either way
    histories = []
    for cache in (False, True):
        torch.manual_seed(1)
        m = BPNN(sf, hidden=(6,))
        histories.append(fit(m, data[:14], data[14:], targets=["energy"], epochs=5, lr=1e-2, batch_size=4,
                             progress=False, device="cpu", cache_features=cache))
    np.testing.assert_allclose(histories[0].val_loss, histories[1].val_loss, rtol=1e-10)
    np.testing.assert_allclose(histories[0].train_loss, histories[1].train_loss, rtol=1e-10)


def test_force_training_from_stored_derivatives_gives_the_same_numbers():
    """Stored per-pair feature derivatives (n2p2's way) give the forces autograd gives through the
    descriptor — radial, BP and Gauss-Fourier angular, and spin-pair terms — and so the same
    force-training history; the batch carries no positions."""
    from mlexplore.descriptors import GaussFourierAngular001, GaussFourierRadial, SpinPair
    from mlexplore.training.fit import PreparedSet

    data = lattice_alloy("CuAu", n_per_composition=1, rattle=0.1, progress=False)[:12]
    data.add_label("magmoms", np.random.default_rng(0).normal(size=data.n_atoms.sum()), per_atom=True)
    gf = GaussFourierRadial(1.0, 2.5, 1.0, 1.5)
    sf = SymmetryFunctions([G2(0.5, 0.0), G2(1.0, 2.5), G4(0.05, 1.0, 1.0), G9(0.02, 2.0, -1.0),
                            GaussFourierAngular001(1.0, 0.5, gf, gf), SpinPair("dot", 1)], cutoff=4.5,
                           elements=["Cu", "Au"])
    torch.manual_seed(0)
    model = BPNN(sf, hidden=(6,)).to(dtype=torch.float64)
    fresh = PreparedSet(model, data, "cpu", torch.float64, ["energy", "forces"])
    stored = PreparedSet(model, data, "cpu", torch.float64, ["energy", "forces"], cache_features=True,
                         derivatives=True, chunk=5)
    idx = torch.tensor([1, 4, 9, 10])
    (b_fresh, _), (b_stored, _) = fresh.batch(idx), stored.batch(idx)
    assert "feature_derivatives" in b_stored and "positions" not in b_stored
    a, b = model.energy_and_forces(b_fresh), model.energy_and_forces(b_stored)
    assert float(a["forces"].abs().max()) > 1e-3
    torch.testing.assert_close(b["forces"], a["forces"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b["energy"], a["energy"], rtol=1e-12, atol=1e-12)
    histories = []
    for cache in (False, None):  # None: stored derivatives, the default for a fixed descriptor
        torch.manual_seed(1)
        m = BPNN(sf, hidden=(6,))
        histories.append(fit(m, data[:9], data[9:], epochs=4, lr=1e-2, batch_size=3, progress=False, device="cpu",
                             cache_features=cache))
    np.testing.assert_allclose(histories[0].val_loss, histories[1].val_loss, rtol=1e-9)
    np.testing.assert_allclose(histories[0].metrics["train_forces_rmse"], histories[1].metrics["train_forces_rmse"],
                               rtol=1e-9)
