"""Parameter helpers (002 appendix F), TPI (eq 3.25–3.28), scalers (SPEC §5), cutoff shapes."""

import math

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlexplore import InputError, StructureDataset
from mlexplore.descriptors import (G2, EnergyBaseline, Scaler, SymmetryFunctions, correlation_score,
                                   correlation_search, cosine, eta_from_attenuation, fourier_spline, g2_maximum,
                                   neighbor_angles, polynomial, rs_at_rdf_modes, tanh3, tpi, tpi_classwise)

TABLE_2_1 = [(1.5, 1.42745), (2.0, 1.89936), (2.5, 2.36834), (3.0, 2.83146), (3.5, 3.28578), (4.0, 3.72838),
             (4.5, 4.15046), (5.0, 4.54323), (5.5, 4.88911)]


def test_table_2_1_g2_maxima():
    """002 table 2.1 (R_c = 6 Å, cosine cutoff). The thesis does not print η; the first row implies
    η ≈ 1.42 Å⁻², and one η must then reproduce the whole table — the inward shift grows from 0.07 Å
    to 0.61 Å as R_s approaches R_c."""
    eta = 1.425
    for rs, published in TABLE_2_1:
        assert g2_maximum(rs, eta, 6.0) == pytest.approx(published, abs=2e-3)
        assert g2_maximum(rs, eta, 6.0) < rs
    # and the helper agrees with the descriptor itself on a single-neighbour dimer
    from ase import Atoms

    sf = SymmetryFunctions([G2(eta, 4.0)], cutoff=6.0)
    r = np.linspace(3.0, 4.5, 1501)
    values = [float(sf.compute(Atoms("Fe2", positions=[[0, 0, 0], [x, 0, 0]]))[0, 0]) for x in r[::10]]
    assert r[::10][int(np.argmax(values))] == pytest.approx(g2_maximum(4.0, eta), abs=0.011)


def test_eta_from_attenuation_published_values():
    assert eta_from_attenuation(0.125, 1.0) == pytest.approx(2.07944154167983)  # eq F.3
    assert eta_from_attenuation(0.25, 0.2) == pytest.approx(34.657, abs=1e-3)  # eq F.6
    # eq F.10: Δθ between the BCC and FCC 1→1 angles of table F.2 (the text rounds it to 0.18376)
    assert eta_from_attenuation(0.125, 1.230959 - 1.047198) == pytest.approx(61.57947, rel=1e-5)
    assert eta_from_attenuation(0.125, 0.37937) == pytest.approx(14.4487, rel=1e-4)  # eq F.13
    with pytest.raises(InputError, match="attenuation"):
        eta_from_attenuation(1.5, 1.0)


def test_rs_at_rdf_modes_finds_bcc_shells_of_table_f1():
    lam = 2.83163
    ds = StructureDataset.from_atoms([bulk("Fe", "bcc", a=lam, cubic=True).repeat(3)])
    modes = rs_at_rdf_modes(ds, n_modes=6, r_max=6.0, smoothing=0.0)
    expected = [math.sqrt(3) / 2 * lam, lam, math.sqrt(2) * lam, math.sqrt(11) / 2 * lam, math.sqrt(3) * lam,
                2 * lam]
    np.testing.assert_allclose(modes, expected, atol=0.02)


def test_neighbor_angles_table_f2():
    lam = 3.44557
    ds = StructureDataset.from_atoms([bulk("Fe", "fcc", a=lam, cubic=True)])
    angles = np.degrees(neighbor_angles(ds, cutoff=2.5))
    assert np.isclose(angles, 60.0, atol=1e-6).any()  # 1→1 in FCC
    assert set(np.round(angles, 4)) == {60.0, 90.0, 120.0, 180.0}


def test_tpi_table_3_1():
    assert tpi(42, (25, 25)) == pytest.approx(41.7, abs=0.05)  # BP, bilayer
    assert tpi(62, (25, 25)) == pytest.approx(36.3, abs=0.05)  # SANNIP, bilayer
    assert tpi_classwise(24, 18, 0) > tpi(42)
    with pytest.raises(InputError):
        tpi(0)


def test_correlation_search_prefers_decorrelated_features():
    ds = StructureDataset.from_atoms([bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)])
    ds = StructureDataset.from_atoms([a for a in ds for _ in range(3)])
    rng = np.random.default_rng(0)
    ds.positions += rng.normal(0, 0.15, ds.positions.shape)

    def featurize(p):
        return SymmetryFunctions([G2(p["eta"], rs) for rs in (2.0, 2.5, 3.0)], cutoff=5.0).compute(ds).numpy()

    best, score, trials = correlation_search(featurize, {"eta": [0.01, 4.0]}, n_trials=6, seed=1)
    assert best["eta"] == 4.0  # wide Gaussians (η = 0.01) are nearly identical features
    assert score == min(s for _, s in trials) and score < correlation_score(featurize({"eta": 0.01}))


@pytest.mark.parametrize("kind, lo, hi", [("minmax", -1, 1), ("minmax01", 0, 1), ("modified", -1, 1)])
def test_scalers_ranges_and_inverse(kind, lo, hi):
    x = np.random.default_rng(0).normal(3, 2, (200, 4))
    x[:, 3] = 7.0  # a constant column must not divide by zero
    s = Scaler(kind).fit(x)
    y = s.transform(x)
    assert y[:, :3].min() >= lo - 1e-12 and y[:, :3].max() <= hi + 1e-12
    assert np.isclose(np.abs(y[:, :3]).max(), max(abs(lo), abs(hi)))
    np.testing.assert_allclose(s.inverse_transform(y), x)
    assert np.isfinite(y).all()
    if kind == "modified":
        np.testing.assert_allclose(y[:, :3].mean(0), 0, atol=1e-12)


def test_standard_scaler_and_jacobian_with_torch():
    x = torch.randn(100, 3, dtype=torch.float64) * 5 + 2
    s = Scaler("standard").fit(x)
    y = s.transform(x)
    assert torch.allclose(y.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    xr = x.clone().requires_grad_(True)
    g = torch.autograd.grad(s.transform(xr).sum(), xr)[0]
    np.testing.assert_allclose(g[0].numpy(), s.jacobian)
    s2 = Scaler.from_state_dict(s.state_dict())
    assert torch.allclose(s2.transform(x), y)
    with pytest.raises(InputError, match="not fitted"):
        Scaler().transform(x)
    with pytest.raises(InputError, match="unknown scaler"):
        Scaler("log")


def test_energy_baseline_recovers_reference_energies():
    from mlexplore.datasets import lattice_alloy

    ds = lattice_alloy("CuAu", n_per_composition=2, progress=False)
    symbols, counts = ds.element_counts()
    true = {"Cu": -3.0, "Au": -4.5}
    e = counts @ np.array([true[s] for s in symbols]) + np.random.default_rng(0).normal(0, 1e-3, len(ds))
    ds.add_label("energy", e, per_atom=False)
    base = EnergyBaseline().fit(ds)
    for k, v in true.items():
        assert base.reference_energies[k] == pytest.approx(v, abs=1e-3)
    assert np.abs(base.residual(ds)).max() < 0.01


@pytest.mark.parametrize("fc", [cosine, polynomial, tanh3])
def test_cutoff_shapes(fc):
    rc = 5.0
    r = torch.tensor([0.0, rc - 1e-6, rc, rc + 1.0], requires_grad=True)
    v = fc(r, rc)
    g = torch.autograd.grad(v.sum(), r)[0]
    v = v.detach()
    assert float(v[0]) == pytest.approx(1.0) and abs(v[1]) < 1e-6 and v[2] == 0 and v[3] == 0
    assert abs(g[1]) < 1e-4 and g[3] == 0
    mid = torch.linspace(0.01, rc - 0.01, 50)
    assert (torch.diff(fc(mid, rc)) < 0).all()  # monotonic


def test_fourier_spline_window():
    r = torch.linspace(0.0, 6.0, 6001, dtype=torch.float64, requires_grad=True)
    w = fourier_spline(r, rs=3.0, eps_down=1.0, eps_up=1.5, xi_down=2, xi_up=4)
    g = torch.autograd.grad(w.sum(), r)[0]
    w = w.detach()
    assert float(w[3000]) == pytest.approx(1.0)  # 1 at R_s
    assert float(w[2000]) == pytest.approx(0.0, abs=1e-12) and float(w[4500]) == pytest.approx(0.0, abs=1e-12)
    assert (w[:2000] == 0).all() and (w[4500:] == 0).all()
    assert abs(float(g[3000])) < 1e-6 and abs(float(g[2000])) < 1e-6 and abs(float(g[4500])) < 1e-6
    with pytest.raises(InputError, match="even"):
        fourier_spline(r, 3.0, 1.0, 1.0, xi_down=3)


def test_radial_and_angular_grids():
    from mlexplore.descriptors import angular_grid, radial_grid

    shifted = radial_grid(5, 1.0, 5.0)
    assert [t.rs for t in shifted] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(t.eta == pytest.approx(0.5) for t in shifted)  # 1 / (2 Δ²), Δ = 1 Å
    centred = radial_grid(3, 1.0, 3.0, mode="centred")
    assert [t.rs for t in centred] == [0.0, 0.0, 0.0]
    assert [t.eta for t in centred] == pytest.approx([0.5, 0.125, 1 / 18])
    modes = radial_grid(2, rs=[2.5, 2.9], eta=4.0)
    assert [(t.eta, t.rs) for t in modes] == [(4.0, 2.5), (4.0, 2.9)]
    assert radial_grid(0) == []
    ang = angular_grid([0.01, 0.1], zetas=[1, 4], lambdas=[-1, 1])
    assert len(ang) == 8 and (ang[0].eta, ang[0].lam, ang[0].zeta) == (0.01, -1, 1)
    with pytest.raises(InputError, match="G4 or G5|'G4' or 'G5'"):
        angular_grid([0.1], family="G9")
    with pytest.raises(InputError, match="mode"):
        radial_grid(3, mode="log")


@pytest.mark.parametrize("cutoff_name", ["cosine", "polynomial", "tanh3"])
def test_vectorised_g2_maxima_equal_the_optimiser(cutoff_name):
    from mlexplore.descriptors import g2_maxima

    rs = np.array([0.0, 1.5, 3.0, 4.5, 5.5, 5.9])
    eta = np.array([0.3, 6.25, 1.5, 25.0, 2.0, 0.1])
    fast = g2_maxima(rs, eta, 6.0, cutoff_name)
    slow = [g2_maximum(a, b, 6.0, cutoff_name) for a, b in zip(rs, eta)]
    np.testing.assert_allclose(fast, slow, atol=1e-5)
