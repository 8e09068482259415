"""GPAW's free energy from a given density and band energy (mlexplore.dft.ldos_energy): the DFT's own
density reproduces GPAW's energy; a density error gives a first-order energy error in the MALA form
(band energy held fixed) and a second-order one in the Harris–Foulkes form."""

import math

import numpy as np
import pytest

from mlexplore.analysis.ldos import fermi_dirac, gaussian_dos
from mlexplore.errors import InputError
from mlexplore.dft.ldos_energy import fermi_dirac_entropy_energy


def _minus_ts(weights: np.ndarray, occupations: np.ndarray, kT: float) -> float:
    f = np.clip(occupations, 1e-300, 1 - 1e-16)
    return float(kT * np.sum(weights * (f * np.log(f) + (1 - f) * np.log1p(-f))))


def test_entropy_energy_of_a_dos_matches_discrete_levels():
    eps = np.array([-3.0, -1.0, 0.02, 0.1, 0.25])
    w = np.array([2.0, 2.0, 1.0, 2.0, 1.0])
    kT, mu = 0.08, 0.1
    energies = np.arange(-4.0, 2.0, 0.001)
    dos = gaussian_dos(eps, w, energies, 0.004)  # nearly discrete levels, well sampled
    exact = _minus_ts(w, np.asarray(fermi_dirac(eps, mu, kT)), kT)
    got = fermi_dirac_entropy_energy(dos, energies, mu, kT)
    assert exact < 0
    assert got == pytest.approx(exact, rel=2e-3)
    assert fermi_dirac_entropy_energy(dos, energies, mu, 0.0) == 0.0
    with pytest.raises(InputError, match="dos_values"):
        fermi_dirac_entropy_energy(dos[:-1], energies, mu, kT)


# ----------------------------------------------------------------------------------------------
# GPAW: FCC Al, 4 atoms (one displaced), PBE, PW 250 eV, k 3×3×3, Fermi–Dirac 0.08 eV
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def al():
    pytest.importorskip("gpaw")
    from ase.build import bulk
    from gpaw import GPAW, PW, FermiDirac

    from mlexplore.dft.ldos import compute_ldos

    atoms = bulk("Al", "fcc", a=4.05, cubic=True)
    atoms.positions[0] += [0.1, 0.05, 0.0]
    atoms.calc = GPAW(mode=PW(250), xc="PBE", kpts=(3, 3, 3), occupations=FermiDirac(0.08), txt=None,
                      convergence={"density": 1e-6, "energy": 1e-7})
    atoms.get_potential_energy()
    result = compute_ldos(atoms.calc, sigma=0.1)
    minus_ts = _minus_ts(result.state_weights[:, None], result.occupations, result.kT)
    return atoms, result, minus_ts


def _cos_wave(density: np.ndarray) -> np.ndarray:
    """A smooth, charge-neutral perturbation: the mean density times cos(2π x/a)."""
    x = np.arange(density.shape[0]) / density.shape[0]
    return density.mean() * np.cos(2 * np.pi * x)[:, None, None] * np.ones(density.shape)


def test_own_density_reproduces_gpaw_free_energy(al):
    from mlexplore.dft.ldos_energy import density_energy_terms, total_energy_from_density

    atoms, result, minus_ts = al
    calc = atoms.calc
    free = calc.get_property("free_energy", atoms)
    assert minus_ts == pytest.approx(calc.dft.energies._energies["entropy"] * 27.211386245988, abs=1e-8)
    terms = density_energy_terms(calc, result.density_reference, result.band_energy, minus_ts)
    per_atom_mev = 1000 * (terms["free_energy"] - free) / len(atoms)
    assert abs(per_atom_mev) < 1e-3  # measured ~1e-12 meV/atom
    assert terms["energy"] == pytest.approx(calc.get_potential_energy(), abs=1e-5)
    assert terms["electrons"] == pytest.approx(result.n_electrons, abs=1e-6)
    assert terms["kinetic"] + terms["coulomb"] + terms["zero"] + terms["xc"] + terms["entropy"] == pytest.approx(
        terms["free_energy"], abs=1e-9)
    assert total_energy_from_density(calc, result.density_reference, result.band_energy,
                                     minus_ts) == terms["free_energy"]
    # the calculator is left as it was
    assert calc.get_property("free_energy", atoms) == free


def test_mala_form_error_is_first_order_in_the_density_error(al):
    from mlexplore.dft.ldos_energy import total_energy_from_density

    atoms, result, minus_ts = al
    n, dn = result.density_reference, _cos_wave(result.density_reference)
    free = atoms.calc.get_property("free_energy", atoms)

    def error(lam):
        return total_energy_from_density(atoms.calc, n + lam * dn, result.band_energy, minus_ts) - free

    odd = {lam: (error(lam) - error(-lam)) / 2 for lam in (1e-3, 4e-3)}
    # a non-zero linear term: the odd part grows as λ (ratio 4), not as λ³
    assert abs(odd[1e-3]) > 1e-6 * len(atoms)
    assert odd[4e-3] / odd[1e-3] == pytest.approx(4.0, rel=0.02)


def test_harris_foulkes_error_is_second_order(al):
    from mlexplore.dft.ldos_energy import harris_foulkes_energy_terms

    atoms, result, _ = al
    n, dn = result.density_reference, _cos_wave(result.density_reference)
    free = atoms.calc.get_property("free_energy", atoms)
    at_ref = harris_foulkes_energy_terms(atoms.calc, n)["free_energy"]
    assert at_ref == pytest.approx(free, abs=1e-5 * len(atoms))
    err = {lam: harris_foulkes_energy_terms(atoms.calc, n + lam * dn)["free_energy"] - at_ref
           for lam in (1e-2, -1e-2, 3e-2)}
    assert err[3e-2] / err[1e-2] == pytest.approx(9.0, rel=0.05)  # ∝ λ²
    assert err[-1e-2] == pytest.approx(err[1e-2], rel=0.02)  # no linear term


def test_bad_inputs(al):
    from mlexplore.dft.ldos_energy import total_energy_from_density

    atoms, result, minus_ts = al
    n = result.density_reference
    with pytest.raises(InputError, match="density has shape"):
        total_energy_from_density(atoms.calc, n[:-1], result.band_energy, minus_ts)
    bad = n.copy()
    bad[0, 0, 0] = math.nan
    with pytest.raises(InputError, match="NaN"):
        total_energy_from_density(atoms.calc, bad, result.band_energy, minus_ts)
    with pytest.raises(InputError, match="band_energy"):
        total_energy_from_density(atoms.calc, n, "x", minus_ts)
    with pytest.raises(InputError, match="renormalize=True"):
        total_energy_from_density(atoms.calc, 1.01 * n, result.band_energy, minus_ts)
    scaled = total_energy_from_density(atoms.calc, 1.01 * n, result.band_energy, minus_ts, renormalize=True)
    assert scaled == pytest.approx(atoms.calc.get_property("free_energy", atoms), abs=1e-9)
    with pytest.raises(InputError, match="calc"):
        total_energy_from_density(object(), n, result.band_energy, minus_ts)
