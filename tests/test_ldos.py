"""The LDOS observables (mlexplore.analysis.ldos) against analytical values, and the GPAW LDOS
(mlexplore.dft.ldos) against GPAW's own DOS, electron count, band energy and density."""

import importlib.util
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import ndtr

from mlexplore.analysis.ldos import (INTEGRATION_METHODS, band_energy, check_energy_grid, dos, electron_count,
                                     electron_density, fermi_dirac, fermi_level, gaussian_dos, integration_weights,
                                     ldos_observables)
from mlexplore.dft.ldos import LDOS_FORMAT, LDOSResult, compute_ldos, default_energy_grid
from mlexplore.errors import InputError

HAVE_GPAW = importlib.util.find_spec("gpaw") is not None
needs_gpaw = pytest.mark.skipif(not HAVE_GPAW, reason="GPAW not installed (scripts/install_gpaw.sh): the DFT LDOS "
                                                      "cannot be computed")

# ----------------------------------------------------------------------------------------------
# A synthetic LDOS: five states with known energies, weights and normalised spatial profiles
# ----------------------------------------------------------------------------------------------

SIGMA = 0.2
EPS = np.array([-6.3, -4.1, -2.05, -0.4, 0.9])  # eV
WEIGHTS = np.array([2.0, 2.0, 1.0, 2.0, 1.5])  # electrons per state at full occupation
GRID = (4, 3, 5)
VOXEL = 0.37  # Å³


def _profiles() -> np.ndarray:
    """(n_states, nx, ny, nz) non-negative profiles, each integrating to 1 (Σ φ · voxel = 1)."""
    rng = np.random.default_rng(7)
    phi = rng.uniform(0.1, 1.0, (len(EPS),) + GRID)
    return phi / (phi.reshape(len(EPS), -1).sum(1)[:, None, None, None] * VOXEL)


def _synthetic(energies: np.ndarray) -> np.ndarray:
    """LDOS(r, E) = Σ_i w_i φ_i(r) g(E − ε_i), shape (nx, ny, nz, n_E)."""
    g = np.exp(-0.5 * ((energies[None, :] - EPS[:, None]) / SIGMA) ** 2) / (SIGMA * math.sqrt(2 * math.pi))
    return np.einsum("i,ixyz,ie->xyze", WEIGHTS, _profiles(), g)


def _occupation(mu: float, kT: float) -> np.ndarray:
    """(f ∗ g)(ε_i) and ∫ f(E) E g(E − ε_i) dE for every state: closed form at kT = 0, adaptive
    quadrature (scipy, independent of the code under test) otherwise."""
    z = (mu - EPS) / SIGMA
    if kT == 0:
        return ndtr(z), EPS * ndtr(z) - SIGMA * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def integral(eps, power):
        def f(e):
            return 0.5 * (1 - math.tanh((e - mu) / (2 * kT))) * e ** power * math.exp(
                -0.5 * ((e - eps) / SIGMA) ** 2) / (SIGMA * math.sqrt(2 * math.pi))
        lo, hi = eps - 12 * SIGMA, eps + 12 * SIGMA
        return quad(f, lo, hi, points=[mu] if lo < mu < hi else None, limit=400, epsabs=1e-14, epsrel=1e-13)[0]

    return (np.array([integral(e, 0) for e in EPS]), np.array([integral(e, 1) for e in EPS]))


ENERGIES = np.arange(-8.0, 3.0 + 1e-9, 0.05)  # σ = 4 ΔE


def test_synthetic_dos_is_the_sum_of_the_gaussians():
    ldos = _synthetic(ENERGIES)
    assert np.allclose(dos(ldos, VOXEL), gaussian_dos(EPS, WEIGHTS, ENERGIES, SIGMA), rtol=1e-12, atol=1e-14)
    # all electrons are on the grid: the sum rule holds to the Gaussians' sampling accuracy
    assert dos(ldos, VOXEL).sum() * 0.05 == pytest.approx(WEIGHTS.sum(), rel=1e-10)


@pytest.mark.parametrize("kT", [0.0, 0.01, 0.1])
@pytest.mark.parametrize("mu", [-0.31, 0.5])
def test_observables_match_analytical_values(kT, mu):
    """N, E_b and n(r) of the synthetic LDOS against Σ_i w_i (f ∗ g)(ε_i) (and its E moment).

    Measured with the default cubic rule (σ = 4 ΔE): N off by ≤ 6.3e-5 of ~7 electrons, E_b by
    ≤ 1.2e-5 eV; MALA's linear rule is off by up to 2.2e-3 electrons here and would fail."""
    ldos = _synthetic(ENERGIES)
    occ, moment = _occupation(mu, kT)
    total = dos(ldos, VOXEL)
    n_exact = WEIGHTS @ occ
    density_exact = np.einsum("i,ixyz->xyz", WEIGHTS * occ, _profiles())
    assert electron_count(total, ENERGIES, mu, kT) == pytest.approx(n_exact, abs=2e-4)
    assert band_energy(total, ENERGIES, mu, kT) == pytest.approx(WEIGHTS @ moment, abs=5e-5)
    assert np.allclose(electron_density(ldos, ENERGIES, mu, kT), density_exact, rtol=5e-5, atol=0)
    # the count is the integral of the density
    assert electron_density(ldos, ENERGIES, mu, kT).sum() * VOXEL == pytest.approx(n_exact, abs=2e-4)


@pytest.mark.parametrize("kT", [0.0, 0.02, 0.1])
def test_fermi_level_recovers_a_known_fermi_level(kT):
    mu = -0.27
    occ, moment = _occupation(mu, kT)
    total = gaussian_dos(EPS, WEIGHTS, ENERGIES, SIGMA)
    found = fermi_level(total, ENERGIES, WEIGHTS @ occ, kT)
    assert found == pytest.approx(mu, abs=1e-4)  # measured ≤ 2.3e-5 eV (the count's quadrature error / D(E_F))
    obs = ldos_observables(_synthetic(ENERGIES), ENERGIES, VOXEL, WEIGHTS @ occ, kT)
    assert obs.e_fermi == pytest.approx(mu, abs=1e-4)
    assert obs.n_electrons == pytest.approx(WEIGHTS @ occ, abs=1e-9)
    assert obs.band_energy == pytest.approx(WEIGHTS @ moment, abs=1e-4)


def test_fermi_level_brackets_a_dos_with_negative_dips():
    """A network's DOS may dip below zero: bisection needs only the sign change."""
    total = gaussian_dos(EPS, WEIGHTS, ENERGIES, SIGMA)
    noisy = total - 0.3 * np.exp(-0.5 * ((ENERGIES + 3.0) / 0.1) ** 2)  # a negative lobe at −3 eV
    assert noisy.min() < 0
    mu = fermi_level(noisy, ENERGIES, 7.0, 0.05)
    assert electron_count(noisy, ENERGIES, mu, 0.05) == pytest.approx(7.0, abs=1e-7)


def test_fermi_level_refuses_a_count_the_grid_cannot_hold():
    total = gaussian_dos(EPS, WEIGHTS, ENERGIES, SIGMA)
    with pytest.raises(InputError, match="no Fermi level") as info:
        fermi_level(total, ENERGIES, WEIGHTS.sum() + 1, 0.05)
    assert info.value.field == "n_electrons"


@pytest.mark.parametrize("kT", [0.0, 0.003, 0.1])
def test_linear_rule_integrates_the_linear_interpolant_exactly(kT):
    """method="linear" (MALA's "analytical" rule) = ∫ f(E) E^k D_lin(E) dE with D_lin the linear
    interpolant, zero one spacing beyond the grid: checked against adaptive quadrature."""
    e = np.arange(-2.0, 1.0 + 1e-9, 0.1)
    d = np.abs(np.sin(3 * e)) + 0.2
    mu = 0.123
    ext = np.concatenate([[e[0] - 0.1], e, [e[-1] + 0.1]])
    dext = np.concatenate([[0.0], d, [0.0]])
    for k in (0, 1):
        def integrand(x):
            return float(fermi_dirac(x, mu, kT)) * x ** k * np.interp(x, ext, dext)
        exact = sum(quad(integrand, a, b, limit=200, epsabs=1e-13)[0]
                    for a, b in zip(ext[:-1], ext[1:]) if b <= mu or a >= mu)
        exact += sum(quad(integrand, a, mu, epsabs=1e-13)[0] + quad(integrand, mu, b, epsabs=1e-13)[0]
                     for a, b in zip(ext[:-1], ext[1:]) if a < mu < b)
        assert d @ integration_weights(e, mu, kT, k, "linear") == pytest.approx(exact, abs=1e-11)


def test_exact_fermi_integration_where_sampling_fails():
    """The MALA lesson: at kT ≪ ΔE, sampling f on the grid (trapezoid) is off by a good part of a
    state; integrating f exactly against an interpolant is not."""
    e = np.arange(-8.0, 3.0 + 1e-9, 0.1)  # σ = 2 ΔE, as MALA's default
    total = gaussian_dos(EPS, WEIGHTS, e, SIGMA)
    mu = -0.33
    exact = WEIGHTS @ _occupation(mu, 0.0)[0]
    errors = {m: abs(electron_count(total, e, mu, 0.0, m) - exact) for m in INTEGRATION_METHODS}
    assert errors["trapezoid"] > 0.05
    assert errors["linear"] < 1e-2 and errors["cubic"] < 2e-3
    assert errors["cubic"] < errors["linear"] / 3


def test_torch_inputs_keep_their_gradient():
    torch = pytest.importorskip("torch")
    ldos_np = _synthetic(ENERGIES)
    ldos = torch.tensor(ldos_np, requires_grad=True)
    density = electron_density(ldos, ENERGIES, -0.3, 0.05)
    n = electron_count(dos(ldos, VOXEL), ENERGIES, -0.3, 0.05)
    assert isinstance(density, torch.Tensor) and isinstance(n, torch.Tensor)
    assert np.allclose(density.detach().numpy(), electron_density(ldos_np, ENERGIES, -0.3, 0.05), rtol=1e-12)
    n.backward()
    # dN/dLDOS(r, E) = voxel volume × the energy weight of E, the same at every r
    w = integration_weights(ENERGIES, -0.3, 0.05) * VOXEL
    assert np.allclose(ldos.grad.numpy(), np.broadcast_to(w, ldos_np.shape), rtol=1e-12)
    assert fermi_level(dos(ldos, VOXEL), ENERGIES, n.item(), 0.05) == pytest.approx(-0.3, abs=1e-6)


@pytest.mark.parametrize("call, field", [
    (lambda: dos(np.ones((2, 3)), 0.0), "voxel_volume"),
    (lambda: electron_count(np.ones(5), np.array([0, 1, 2, 4, 5.0]), 1.0, 0.1), "energies"),
    (lambda: electron_count(np.ones(4), np.arange(5.0), 1.0, 0.1), "dos_values"),
    (lambda: electron_density(np.ones((2, 4)), np.arange(5.0), 1.0, 0.1), "ldos"),
    (lambda: band_energy(np.ones(5), np.arange(5.0), 1.0, -0.1), "kT"),
    (lambda: electron_count(np.ones(5), np.arange(5.0), 1.0, 0.1, method="simpson"), "method"),
    (lambda: integration_weights(np.arange(5.0), 1.0, 0.1, moment=2), "moment"),
    (lambda: fermi_level(np.ones((2, 5)), np.arange(5.0), 1.0, 0.1), "dos_values"),
    (lambda: electron_count(np.array([1, np.nan, 1, 1, 1.0]), np.arange(5.0), 1.0, 0.1), "dos_values"),
    (lambda: gaussian_dos(np.ones((3, 2)), np.ones(3), np.arange(5.0), 0.1), "weights"),
    (lambda: check_energy_grid(np.arange(5.0)[::-1]), "energies"),
])
def test_bad_input_names_the_argument(call, field):
    with pytest.raises(InputError) as info:
        call()
    assert info.value.field == field


def test_default_energy_grid_covers_the_band_on_shared_points():
    grid = default_energy_grid([[-5.02, 1.0], [-3.0, 9.0]], e_fermi=2.0, kT=0.1, sigma=0.1)
    step = grid[1] - grid[0]
    assert step == pytest.approx(0.05)
    assert grid[0] <= -5.02 - 0.5 and grid[-1] >= 2.0 + 1.0 + 0.5
    assert np.allclose(grid / step, np.rint(grid / step), atol=1e-9)  # multiples of the spacing


# ----------------------------------------------------------------------------------------------
# LDOSResult without GPAW: a stand-in built from the synthetic LDOS
# ----------------------------------------------------------------------------------------------

def _stand_in() -> LDOSResult:
    """An LDOSResult as compute_ldos would return it, built from the synthetic states."""
    edge = (VOXEL * np.prod(GRID)) ** (1 / 3)
    cell = np.eye(3) * edge
    mu, kT = -0.3, 0.05
    occ = fermi_dirac(EPS, mu, kT)
    return LDOSResult(ldos=_synthetic(ENERGIES), energies=ENERGIES, sigma=SIGMA, kT=kT, cell=cell,
                      positions=np.zeros((1, 3)), numbers=np.array([13]), spin=None, augmented=True, e_fermi=mu,
                      n_electrons=float(WEIGHTS @ occ), band_energy=float(WEIGHTS @ (occ * EPS)), energy=-1.0,
                      free_energy=-1.1, dos_reference=gaussian_dos(EPS, WEIGHTS, ENERGIES, SIGMA),
                      density_reference=np.einsum("i,ixyz->xyz", WEIGHTS * occ, _profiles()),
                      eigenvalues=EPS[None, :], state_weights=np.array([1.0]), occupations=occ[None, :])


def test_result_observables_and_grid():
    result = _stand_in()
    assert result.grid_shape == GRID
    assert result.voxel_volume == pytest.approx(VOXEL)
    assert np.allclose(result.dos(), result.dos_reference, rtol=1e-12)
    obs = result.observables()
    assert obs.n_electrons == pytest.approx(result.n_electrons, abs=1e-9)
    assert result.grid_positions().shape == GRID + (3,)
    assert np.allclose(result.grid_positions()[1, 0, 0], result.cell[0] / GRID[0])


def test_result_save_load_round_trip(tmp_path):
    result = _stand_in()
    path = result.save(tmp_path / "ldos.npz")
    back = LDOSResult.load(path)
    for name in ("ldos", "energies", "cell", "dos_reference", "density_reference", "eigenvalues", "occupations"):
        assert np.array_equal(getattr(back, name), getattr(result, name)), name
    assert (back.spin, back.augmented, back.sigma, back.e_fermi) == (None, True, SIGMA, result.e_fermi)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ldos.npz"]  # no temporary file left
    # a path without the .npz suffix is written where asked (np.savez would add one to a file name)
    assert LDOSResult.load(result.save(tmp_path / "plain")).grid_shape == GRID


def test_loading_something_else_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.ones(3))
    with pytest.raises(InputError, match=LDOS_FORMAT):
        LDOSResult.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="could not be read"):
        LDOSResult.load(tmp_path / "junk.npz")


def test_result_checks_its_shapes():
    result = _stand_in()
    with pytest.raises(InputError) as info:
        LDOSResult(**{**result.__dict__, "energies": ENERGIES[:-1]})
    assert info.value.field == "energies"


def test_compute_ldos_refuses_what_is_not_a_gpaw_calculator():
    pytest.importorskip("gpaw", reason="GPAW not installed: compute_ldos asks for it first")
    from ase.calculators.emt import EMT

    with pytest.raises(InputError) as info:
        compute_ldos(EMT())
    assert info.value.field == "calc"


# ----------------------------------------------------------------------------------------------
# GPAW: FCC Al, one atom, LDA, PW 200 eV, Fermi–Dirac 0.1 eV, grid h = 0.3 Å (10×10×10)
# ----------------------------------------------------------------------------------------------

def _al(kpts: int, **extra):
    from ase.build import bulk
    from gpaw import GPAW, PW, FermiDirac

    atoms = bulk("Al", "fcc", a=4.05)
    atoms.calc = GPAW(mode=PW(200), xc="LDA", kpts=(kpts,) * 3, occupations=FermiDirac(0.1), h=0.3, nbands=8,
                      txt=None, **extra)
    atoms.get_potential_energy()
    return atoms


@pytest.fixture(scope="module")
def al_k6():
    """k 6×6×6 (16 irreducible points): dense enough that a 0.05 eV broadening barely changes the
    occupations (the broadening's effect on N, E_b and n(r) is what the tolerances below bound)."""
    atoms = _al(6)
    return atoms, compute_ldos(atoms.calc, sigma=0.05)


@needs_gpaw
def test_gpaw_ldos_integrates_to_gpaws_dos(al_k6):
    _, result = al_k6
    assert result.grid_shape == (10, 10, 10)
    scale = result.dos_reference.max()
    assert np.abs(result.dos() - result.dos_reference).max() < 1e-9 * scale
    assert result.n_electrons == pytest.approx(3.0, abs=1e-9)


@needs_gpaw
def test_gpaw_ldos_reproduces_count_fermi_level_band_energy_and_density(al_k6):
    """Measured (Al, k 6×6×6, σ = 0.05 eV, cubic rule): N at GPAW's E_F +0.018 % off; E_F from the
    LDOS 1.2 meV above GPAW's; band energy at that E_F 0.6 meV low (the broadening's leading bias is
    −σ² D(E_F) / 2 ≈ −0.5 meV); density 0.006 % mean absolute percentage error."""
    _, r = al_k6
    at_gpaw = r.observables(e_fermi=r.e_fermi)
    assert abs(at_gpaw.n_electrons / r.n_electrons - 1) < 1e-3  # ≤ 0.1 %
    own = r.observables()
    assert own.n_electrons == pytest.approx(r.n_electrons, abs=1e-8)
    assert abs(own.e_fermi - r.e_fermi) < 5e-3  # eV
    assert abs(own.band_energy - r.band_energy) < 2e-3  # eV per atom (one atom)
    mape = np.mean(np.abs(own.density - r.density_reference) / np.abs(r.density_reference))
    assert mape < 5e-4
    assert r.density_reference.sum() * r.voxel_volume == pytest.approx(3.0, abs=1e-5)


@needs_gpaw
def test_gpaw_bare_pseudo_ldos_misses_the_paw_charge_deficit(al_k6):
    """Without the compensation charges the LDOS is GPAW's valence pseudo density (ñ − ñ_c) but it
    holds 1.5 % too many electrons for Al: the reason the default adds them."""
    atoms, augmented = al_k6
    bare = compute_ldos(atoms.calc, sigma=0.05, augment=False, energies=augmented.energies)
    dens = bare.observables(e_fermi=bare.e_fermi).density
    assert np.mean(np.abs(dens - bare.density_reference) / bare.density_reference) < 1e-3
    count = bare.density_reference.sum() * bare.voxel_volume
    assert 1.01 < count / 3.0 < 1.03
    assert np.abs(bare.dos() - bare.dos_reference).max() > 0.01 * bare.dos_reference.max()


@needs_gpaw
def test_gpaw_symmetry_reduced_legacy_and_spin_polarised_runs_agree():
    """The LDOS from the irreducible k-points, symmetrised, equals the one from all k-points; a
    legacy calculator gives the same; spin channels add up to the total."""
    full = compute_ldos(_al(3, symmetry={"point_group": False}).calc, sigma=0.1)
    reduced = compute_ldos(_al(3).calc, sigma=0.1, energies=full.energies)
    scale = full.ldos.max()
    assert np.abs(reduced.ldos - full.ldos).max() < 1e-4 * scale
    # the legacy calculator's own SCF lands 2e-4 (relative) away; its LDOS is still exact for its states
    legacy = compute_ldos(_al(3, legacy_gpaw=True).calc, sigma=0.1, energies=full.energies, dtype=np.float32)
    assert legacy.ldos.dtype == np.float32
    assert np.abs(legacy.ldos - full.ldos).max() < 1e-3 * scale
    assert np.abs(legacy.dos() - legacy.dos_reference).max() < 1e-6 * legacy.dos_reference.max()
    atoms = _al(3, spinpol=True)
    channels = [compute_ldos(atoms.calc, sigma=0.1, energies=full.energies, spin=s) for s in (0, 1)]
    total = compute_ldos(atoms.calc, sigma=0.1, energies=full.energies)
    assert np.allclose(channels[0].ldos + channels[1].ldos, total.ldos, rtol=0, atol=1e-10 * scale)
    assert channels[0].n_electrons + channels[1].n_electrons == pytest.approx(3.0, abs=1e-8)
    for channel in channels:
        assert np.abs(channel.dos() - channel.dos_reference).max() < 1e-9 * scale


@needs_gpaw
def test_gpaw_ldos_refuses_a_grid_above_its_bands(al_k6):
    atoms, result = al_k6
    with pytest.raises(InputError, match="nbands") as info:
        compute_ldos(atoms.calc, energies=np.arange(-5.0, 60.0, 0.05))
    assert info.value.field == "energies"
    with pytest.raises(InputError) as info:
        compute_ldos(atoms.calc, spin=1)
    assert info.value.field == "spin"


@needs_gpaw
def test_gpaw_result_survives_a_file(al_k6, tmp_path):
    _, result = al_k6
    back = LDOSResult.load(result.save(tmp_path / "al.npz"))
    assert np.array_equal(back.ldos, result.ldos)
    assert back.observables().e_fermi == pytest.approx(result.observables().e_fermi, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# ldos_errors: what a prediction's observables miss, against hand computations
# ---------------------------------------------------------------------------------------------

def _two_state_ldos(weights_a: float, shape=(3, 4, 5)):
    """An LDOS of two Gaussian bands on a grid: band a (centre −2 eV) with spatial weight
    ``weights_a``·(1 + x/10), band b (centre +1 eV) uniform."""
    from mlexplore.analysis.ldos import gaussian_dos

    e = np.arange(-6.0, 5.0, 0.05)
    ga = gaussian_dos(np.array([[-2.0]]), np.array([[1.0]]), e, 0.2)
    gb = gaussian_dos(np.array([[1.0]]), np.array([[1.0]]), e, 0.2)
    x = np.arange(np.prod(shape)).reshape(shape) / np.prod(shape)
    return e, (weights_a * (1 + x / 10))[..., None] * ga + 0.5 * gb


def test_ldos_errors_are_zero_for_the_reference_and_match_hand_numbers():
    from mlexplore.analysis.ldos import ldos_errors, ldos_observables

    e, ref = _two_state_ldos(1.0)
    vol, n, kT = 0.1, 5.0, 0.05
    same = ldos_errors(ref, ref, e, vol, n, kT, n_atoms=4)
    assert same.band_energy == 0 and same.e_fermi == 0 and same.density_mape == 0 and same.dos_error == 0
    assert same.ldos_rmse == 0 and same.electrons == 0
    pred = ref * 1.02  # 2 % too many states everywhere
    got = ldos_errors(pred, ref, e, vol, n, kT, n_atoms=4)
    po, ro = (ldos_observables(d, e, vol, n, kT) for d in (pred, ref))
    assert got.band_energy == pytest.approx(1000 * (po.band_energy - ro.band_energy) / 4)
    assert got.e_fermi == pytest.approx(1000 * (po.e_fermi - ro.e_fermi))
    assert got.dos_error == pytest.approx(2.0, rel=1e-6)
    assert got.electrons == pytest.approx(0.02 * n, rel=1e-3)  # 2 % more states below DFT's E_F
    assert got.density_mape == pytest.approx(100 * np.mean(np.abs(po.density - ro.density) / ro.density))
    assert got.ldos_rmse == pytest.approx(np.sqrt(np.mean((0.02 * ref) ** 2)))
    assert got.n_atoms == 4 and set(got.as_dict()) >= {"band_energy", "density_mape", "dos_error"}
    with pytest.raises(InputError) as info:
        ldos_errors(pred[:2], ref, e, vol, n, kT, n_atoms=4)
    assert info.value.field == "predicted"
