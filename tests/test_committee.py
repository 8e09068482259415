"""Committee potentials and extrapolation detection (issue 21): the committee's mean and spread are
its members' mean and standard deviation; the training domain is recorded, saved and used to warn,
raise or stay silent, naming the atom and the feature."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from mlexplore import InputError
from mlexplore.data import random_split
from mlexplore.descriptors import G2, SymmetryFunctions
from mlexplore.models import BPNN, Committee
from mlexplore.training import (ExtrapolationError, ExtrapolationWarning, Potential, calibrate_committee,
                                fit_committee, load_model, save_model)


def _descriptor():
    return SymmetryFunctions([G2(1.0, 2.5), G2(0.5, 3.5), G2(2.0, 2.9)], cutoff=4.5, elements=["Au"])


@pytest.fixture(scope="module")
def gold_sets():
    from mlexplore.datasets import gold

    ds = gold(n_per_group=2, progress=False)
    return random_split(ds, (0.6, 0.2, 0.2), seed=0)


@pytest.fixture(scope="module")
def committee(gold_sets):
    train, val, _ = gold_sets
    c = Committee(_descriptor(), n_members=3, hidden=(6,)).double()
    fit_committee(c, train, val, epochs=15, device="cpu", dtype=torch.float64, batch_size=8)
    return c


def _compressed():
    return bulk("Au", "fcc", a=4.08 * 0.75, cubic=True)


def test_members_start_different_and_the_global_rng_is_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    c = Committee(_descriptor(), n_members=3, hidden=(4,))
    assert torch.rand(1) == before
    w = [m.nets[0].first_layer.weight for m in c.members]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    again = Committee(_descriptor(), n_members=3, hidden=(4,))
    assert torch.equal(again.members[2].nets[0].first_layer.weight, w[2])


def test_committee_mean_and_std_are_those_of_its_members(committee, gold_sets):
    test = gold_sets[2]
    pred = Potential(committee, extrapolation="ignore").predict(test)
    members = [Potential(m, extrapolation="ignore").predict(test) for m in committee.members]
    scale = float(committee.std_scale)
    for name in ("energy", "energies", "forces"):
        stack = np.stack([m[name] for m in members])
        np.testing.assert_allclose(pred[name], stack.mean(axis=0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(pred[f"{name}_std"], scale * stack.std(axis=0), rtol=1e-8, atol=1e-12)
    assert pred["forces_std"].shape == pred["forces"].shape and (pred["energy_std"] > 0).all()


def test_the_calculator_gives_the_same_mean_and_spread(committee):
    atoms = bulk("Au", "fcc", a=4.1, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=1)
    pot = Potential(committee, extrapolation="ignore")
    pred = pot.predict(atoms)
    atoms.calc = pot.as_ase_calculator()
    np.testing.assert_allclose(atoms.get_forces(), pred["forces"], atol=1e-10)
    res = atoms.calc.results
    np.testing.assert_allclose(res["forces_std"], pred["forces_std"], atol=1e-10)
    np.testing.assert_allclose(res["energies_std"], pred["energies_std"], atol=1e-10)
    assert res["energy_std"] == pytest.approx(float(pred["energy_std"][0]), rel=1e-9)
    assert atoms.get_stress().shape == (6,)


def test_a_single_member_committee_has_zero_spread(gold_sets):
    c = Committee(_descriptor(), n_members=1, hidden=(4,)).double()
    pred = Potential(c, extrapolation="ignore").predict(gold_sets[2])
    assert not pred["energy_std"].any() and not pred["forces_std"].any()


def test_calibration_makes_the_spread_match_the_error(committee, gold_sets):
    val = gold_sets[1]
    report = calibrate_committee(committee, val)
    assert report["calibrated_on"] == "forces" and report["scale"] > 0
    assert report["forces_std_after"] == pytest.approx(report["forces_rmse"], rel=1e-9)
    pred = Potential(committee, extrapolation="ignore").predict(val)
    err = pred["forces"] - val.label("forces")
    assert np.sqrt(np.mean(pred["forces_std"] ** 2)) == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-8)


def test_no_warning_on_the_training_structures(committee, gold_sets):
    train = gold_sets[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        pred = Potential(committee).predict(train)
    assert not pred["extrapolating"].any() and pred["novelty"].max() <= 1 + 1e-9


@pytest.mark.parametrize("structure", ["compressed", "dimer"])
def test_warnings_on_the_compressed_lattice_and_the_dimer(committee, structure):
    atoms = _compressed() if structure == "compressed" else Atoms("Au2", positions=[[0, 0, 0], [1.6, 0, 0]])
    with pytest.warns(ExtrapolationWarning) as record:
        pred = Potential(committee).predict(atoms)
    assert len(record) == 1  # one summary per call, not one line per atom and feature
    message = str(record[0].message)
    assert f"{len(atoms)} of {len(atoms)} atoms" in message and "worst atom" in message
    assert any(name in message for name in committee.descriptor.feature_names)
    assert pred["extrapolating"].all() and (pred["extrapolation_grade"] > 0).all()


def test_the_policy_raises_or_stays_silent_as_asked(committee):
    atoms = _compressed()
    with pytest.raises(ExtrapolationError, match=r"worst atom \d+ \(Au\)"):
        Potential(committee, extrapolation="raise").predict(atoms)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = Potential(committee, extrapolation="ignore").predict(atoms)
        also = Potential(committee).predict(atoms, extrapolation="ignore")
    assert quiet["extrapolating"].all() and also["extrapolating"].all()  # flags whatever the policy
    with pytest.raises(ValueError, match="extrapolation must be one of"):
        Potential(committee, extrapolation="loud")


def test_an_md_run_warns_once_and_counts_the_rest(committee):
    atoms = _compressed()
    atoms.calc = Potential(committee).as_ase_calculator()
    with pytest.warns(ExtrapolationWarning) as record:
        for k in range(4):
            atoms.positions[0, 0] += 0.01
            atoms.get_forces()
    assert len(record) == 1
    log = atoms.calc.extrapolation
    assert log.calls == 4 and log.calls_extrapolating == 4 and log.atoms_extrapolating == 4 * len(atoms)
    assert "4 of 4 calculations" in atoms.calc.extrapolation_summary()
    assert atoms.calc.results["extrapolating"].all()


def test_the_committee_and_its_domain_survive_save_and_load(committee, gold_sets, tmp_path):
    path = tmp_path / "committee.pt"
    save_model(committee, path)
    back = load_model(path)
    assert isinstance(back, Committee) and len(back) == 3
    assert float(back.std_scale) == float(committee.std_scale) and back.domain.is_fitted
    a = Potential(committee, extrapolation="ignore").predict(gold_sets[2])
    b = Potential.load(path).predict(gold_sets[2], extrapolation="ignore")
    for name in ("energy", "energy_std", "forces_std", "novelty", "extrapolation_grade"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-14)


def test_a_model_file_from_before_the_domain_still_loads(tmp_path):
    model = BPNN(_descriptor(), hidden=(4,)).double()
    path = tmp_path / "old.pt"
    save_model(model, path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.startswith("domain.")}
    torch.save(payload, path)
    old = load_model(path)
    assert not old.domain.is_fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        pred = Potential(old).predict(_compressed())
    assert "extrapolating" not in pred  # nothing is known of its domain, and nothing is claimed


def test_the_domain_names_the_feature_and_the_excess():
    from mlexplore.models import FeatureDomain

    dom = FeatureDomain(1, 2)
    x = torch.tensor([[0.0, 1.0], [1.0, 3.0], [0.5, 2.0]], dtype=torch.float64)
    dom.fit(x, torch.zeros(3, dtype=torch.long))
    a = dom.assess(torch.tensor([[0.5, 2.0], [0.5, 5.0], [-0.5, 2.0]], dtype=torch.float64),
                   torch.zeros(3, dtype=torch.long))
    assert a.grade.tolist() == [0.0, 1.0, 0.5] and a.feature.tolist() == [-1, 1, 0]
    assert a.extrapolating.tolist() == [False, True, True]


def test_members_trained_together_equal_each_trained_alone(gold_sets):
    """The vectorised committee (one loop, one shared batch order) gives each member exactly the
    weights and history fit() gives it alone from the same start and batch order: early stopping
    and each member's own plateau schedule included."""
    import copy

    from mlexplore.training import fit

    train, val, _ = gold_sets
    c = Committee(_descriptor(), n_members=3, hidden=(6,)).double()
    start = [copy.deepcopy(m) for m in c.members]
    kwargs = dict(epochs=40, lr=5e-2, batch_size=4, patience=4, lr_patience=0, device="cpu", dtype=torch.float64)
    together = fit_committee(c, train, val, seed=5, **kwargs)
    assert any(min(h.lr) < 5e-2 for h in together)  # the members' own schedules acted
    for k, m in enumerate(start):
        alone = fit(m, train, val, seed=5, progress=False, **kwargs)
        np.testing.assert_allclose(together[k].val_loss, alone.val_loss, rtol=1e-10)
        np.testing.assert_allclose(together[k].lr, alone.lr)
        for p, q in zip(c.members[k].parameters(), m.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_bootstrap_members_weigh_their_own_samples(gold_sets):
    """A bootstrap member trained together (its sample as counts in the loss) follows the same path as
    fit() on its resampled set, whose batches hold the same structures the same number of times
    (full batches: the order inside a batch does not matter)."""
    import copy

    from mlexplore.training import fit
    from mlexplore.training.committee import bootstrap_counts

    train, val, _ = gold_sets
    counts = bootstrap_counts(len(train), 7 + 1)
    assert counts.sum() == len(train) and (counts == 0).any()
    c = Committee(_descriptor(), n_members=2, hidden=(5,)).double()
    start = copy.deepcopy(c.members[1])
    kwargs = dict(epochs=6, lr=1e-2, batch_size=len(train), patience=None, device="cpu", dtype=torch.float64)
    together = fit_committee(c, train, val, resample="bootstrap", seed=7, **kwargs)
    for name in ("feature_shift", "feature_scale", "reference_energy", "energy_scale"):  # the whole set's
        getattr(start, name).copy_(getattr(c.members[1], name))
    sample = train.select(np.repeat(np.arange(len(train)), counts))
    alone = fit(start, sample, val, seed=7, normalise=False, progress=False, **kwargs)
    np.testing.assert_allclose(together[1].val_loss, alone.val_loss, rtol=1e-9)
    assert not np.allclose(together[0].val_loss, together[1].val_loss)


def test_one_by_one_is_still_there_with_checkpoints(gold_sets, tmp_path):
    train, val, _ = gold_sets
    c = Committee(_descriptor(), n_members=2, hidden=(4,)).double()
    hs = fit_committee(c, train, val, epochs=3, vectorise=False, checkpoint_dir=tmp_path, device="cpu",
                       dtype=torch.float64)
    assert len(hs) == 2 and (tmp_path / "best.pt").exists()
    with pytest.raises(InputError, match="vectorise=False"):
        fit_committee(c, train, val, epochs=1, checkpoint_dir=tmp_path, device="cpu")


def test_an_unknown_argument_is_named(gold_sets):
    train, val, _ = gold_sets
    c = Committee(_descriptor(), n_members=2, hidden=(4,))
    with pytest.raises(InputError, match="unknown argument.*epoch_count"):
        fit_committee(c, train, val, epoch_count=3)
    assert len(fit_committee(c, train, val, epochs=2, pca_init=2, device="cpu")) == 2  # fit()'s options pass
