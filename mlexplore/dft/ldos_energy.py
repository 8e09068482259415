"""The total free energy of a GPAW (PAW) calculation for a *given* valence density and band energy:
the last step of a MALA-style LDOS surrogate (Ellis et al., *Phys. Rev. B* **104**, 035120 (2021)).

MALA evaluates, with Quantum ESPRESSO's norm-conserving total-energy module,

    F = E_band − ∫ v_Hxc[n] n dr + E_H[n] + E_xc[n] + E_ewald − TS,

with ``E_band`` and ``−TS`` from the predicted DOS and ``n`` the predicted density. A norm-conserving
density on the grid determines every term. GPAW is PAW, and its free energy (``gpaw/new/pot_calc.py``:
``PotentialCalculator.calculate`` and ``calculate_non_local_potential1``; ``gpaw/new/pw/pot_calc.py``:
``PlaneWavePotentialCalculator.calculate_pseudo_potential``; ``gpaw/new/energies.py``: ``DFTEnergies``) is

    F = T + E_coulomb + E_zero + E_xc − TS,
    T         = E_band − ∫ ṽ (ñ − ñ_c) dr + Σ_a [K_p·D_p + K_c − Σ_ij D_ij ΔH_ij],
    E_coulomb = ½ ∫∫ ρ̃ ρ̃ / |r − r'|  +  Σ_a [M + D_p·(M_p + M_pp·D_p)],   ρ̃ = ñ + Σ_aL Q_aL ĝ_aL,
    E_zero    = ∫ v̄ ñ dr + Σ_a [MB + MB_p·D_p],
    E_xc      = E_xc[ñ] (on the fine grid) + Σ_a ΔE_xc^a[D_a],

where ñ is the pseudo density (with the smooth core ñ_c), ṽ = v̄ + ṽ_H + ṽ_xc the pseudo potential,
D_a = D^a_ij the atomic density matrices, Q_aL = Σ_ij D_ij Δ_ijL + Δ_0 δ_L0 the compensation-charge
multipoles and ΔH_ij = ∂E/∂D_ij (which contains V_aL = ∫ ṽ_H ĝ_aL, so it depends on ñ too). The
LDOS density of :func:`mlexplore.dft.compute_ldos` is ``n = ñ − ñ_c + Σ_aL Q^val_aL ĝ_aL`` on GPAW's
coarse grid (the valence pseudo density plus the valence compensation charges).

**What is missing.** The D_a (for Al 13 × 13 per atom and spin) enter the atomic corrections (kinetic,
Coulomb, zero-potential and xc) non-linearly, and a grid density does not carry them: it holds only
the nine multipoles Q_aL (l ≤ 2) of each atom's D, smeared into ĝ_aL, and those cannot even be told
apart from ñ on the grid. So GPAW's energy is *not* a functional of the LDOS density alone; no exact
route exists. What this module does instead (the one unavoidable approximation):

* **D_a fixed at the DFT's** (``calc.dft.density.D_asii``, the density matrices of the converged
  run of the same snapshot). The pseudo density is recovered as ``ñ = n − Σ_aL Q^val,ref_aL ĝ_aL + ñ_c``
  (the reference valence compensation charges subtracted on the same coarse-grid ĝ that
  :func:`~mlexplore.dft.compute_ldos` adds), and the potential, the double-counting terms and the
  atomic corrections are GPAW's own code (``pot_calc.calculate``) on that density with the reference D.
  For the DFT's own density this is GPAW's energy expression term by term, so it reproduces
  ``get_potential_energy()``'s free energy to rounding (measured 2e-12 meV/atom; FCC Al, 4 atoms, PBE,
  PW 250 eV, k 3×3×3, Fermi–Dirac 0.08 eV).
* ``E_band`` and ``−TS`` are taken as given (the MALA form), not recomputed from the Hamiltonian.

Consequences, measured on that cell (GPAW 26.7, one core; ``tests/test_ldos_energy.py``):

* MALA form (:func:`total_energy_from_density`, E_band and −TS held at the DFT's): the double-
  counting expression is **not** variational in the density — its derivative at fixed E_band is
  ``−∫∫ n(r) K(r, r') δn(r') dr dr'`` (K the Hartree + xc kernel) — so the error is first order.
  n + λ δn, errors in meV/atom (δn charge-neutral; "L2" = ‖λ δn‖ / ‖n‖):

  =================================== ===== ========= ========= ========= =========
  δn                                  L2/λ  λ = 1e-3  λ = −1e-3 λ = 1e-2  λ = −1e-2
  =================================== ===== ========= ========= ========= =========
  n̄ cos(2π x/a) (smooth)              0.70  +0.044    −0.063    −0.408    −1.484
  n − n̄ (contrast scaled by 1 + λ)    0.18  −0.079    +0.079    −0.795    +0.779
  n̄ × white noise (zero mean)         0.99  +0.001    −0.002    −0.056    −0.085
  =================================== ===== ========= ========= ========= =========

  i.e. a linear term of 54 (cos) and 79 (contrast) meV/atom per unit λ, plus a concave quadratic one
  (−E_H[λ δn]: −0.95 meV/atom for the cos wave at λ = 1e-2).
* Harris–Foulkes form (:func:`harris_foulkes_energy_terms`, E_band and −TS from diagonalising the
  Hamiltonian of the input density): second order. Same perturbations: cos wave −0.0202, −2.021,
  −18.18 meV/atom at λ = 1e-3, 1e-2, 3e-2 (−2.021 at −1e-2); contrast −3.2e-5, −0.0032, −0.028; noise
  +0.0046, +0.48, +4.86 (stationary, not a minimum: short-wavelength errors raise it).
* D_a matter at first order: with the SCF density, band energy and −TS but D_a moved from the SCF
  values towards the superposition of free atoms by 1 %, 10 %, 100 % of the way, F is off by −0.37,
  −3.7, −29 meV/atom.
* The full LDOS route (σ = 0.05 eV, spacing 0.05 eV: E_band, E_F and −TS from the DOS of the LDOS,
  the density from the LDOS) gives F off by −0.69 meV/atom, almost all of it the σ² bias of the
  band energy (−5.1 meV per cell) and −TS (+2.4 meV) of Gaussian-broadened levels.
* One evaluation: 0.065 s (15³ grid, Poisson solver at 2000 eV); Harris–Foulkes 0.6 s.

Requires the converged calculation of *the same* snapshot (geometry-only pieces — setups, grids,
ñ_c, v̄, ĝ — could come from an unconverged one, but D_a needs the SCF); a surrogate that wants
to avoid DFT at inference must predict D_a as well (an atom-centred target). Restrictions: serial,
collinear, fully periodic, plane-wave or finite-difference mode, LDA/GGA functionals (no meta-GGA:
the kinetic-energy density is not given; no hybrids), no external potentials or other extensions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..analysis.ldos import check_energy_grid, fermi_dirac
from ..errors import InputError, check_positive
from .ldos import as_new_api

__all__ = ["total_energy_from_density", "density_energy_terms", "harris_foulkes_energy_terms",
           "fermi_dirac_entropy_energy"]


def _finite_float(value: Any, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}", field=name) from None
    if not math.isfinite(x):
        raise InputError(f"{name} must be finite, got {x}", field=name)
    return x


def _checked_dft(calc: Any) -> Any:
    try:
        dft = calc.dft
    except AttributeError:
        raise InputError("the calculator has no converged calculation: run it first (atoms.get_potential_energy())",
                         field="calc") from None
    if dft.comm.size != 1:
        raise InputError("total_energy_from_density runs on serial GPAW calculations only", field="calc")
    density, pot_calc = dft.density, dft.pot_calc
    if not density.collinear:
        raise InputError("non-collinear calculations are not supported", field="calc")
    if not np.all(calc.atoms.pbc):
        raise InputError("the calculation must be periodic in all three directions", field="calc")
    xc = pot_calc.xc
    if getattr(xc, "type", None) == "MGGA" or density.taut_sR is not None:
        raise InputError(f"meta-GGA functional {xc.name!r}: the energy needs the kinetic-energy density, which a "
                         "density alone does not give", field="calc")
    if getattr(xc, "exx_fraction", 0.0) != 0.0:
        raise InputError(f"hybrid functional {xc.name!r}: exact exchange needs the orbitals", field="calc")
    if pot_calc.extensions:
        raise InputError("calculations with extensions (external potentials, D3, ...) are not supported",
                         field="calc")
    if not hasattr(pot_calc, "calculate_pseudo_potential"):
        raise InputError(f"unsupported GPAW mode ({type(pot_calc).__name__})", field="calc")
    return dft


def _valence_compensation(dft: Any) -> Any:
    """``(ghat, coefs_per_channel)``: GPAW's compensation functions on the coarse grid (as
    :func:`~mlexplore.dft.compute_ldos` builds them) and, per density channel, the reference
    valence multipoles Q^val_aL = Σ_ij D_ij Δ_ijL (no core Δ_0) as AtomArrays."""
    from gpaw.core.atom_arrays import AtomArraysLayout

    density = dft.density
    grid = density.nt_sR.desc
    atomdist = density.D_asii.layout.atomdist
    ghat = dft.setups.create_compensation_charges(grid, dft.relpos_ac, atomdist)
    layout = AtomArraysLayout([d.shape[2] for d in density.delta_aiiL], atomdist=atomdist)
    coefs = []
    for s in range(density.ndensities):
        c = layout.empty()
        for a, D_sii in density.D_asii.items():
            c[a][:] = np.einsum("ij,ijL->L", D_sii[s].real, density.delta_aiiL[a])
        coefs.append(c)
    return ghat, coefs


def density_energy_terms(calc: Any, density: Any, band_energy: float, entropy_energy: float, *,
                         renormalize: bool = False, charge_tolerance: float = 1e-2) -> dict[str, float]:
    """GPAW's free energy, term by term, for a given valence density, band energy and −TS, with the
    atomic density matrices of ``calc`` (module docstring: the approximation and what it costs).

    Parameters
    ----------
    calc : GPAW calculator
        The converged GPAW calculation of the same structure (new or legacy API; a legacy one is
        written to a temporary ``.gpw`` file and read back): its setups, grids, smooth core
        density, compensation charges and atomic density matrices D_a are used.
    density : array_like
        Valence density (electrons / Å³) on GPAW's coarse real-space grid, voxel (i, j, k) at
        fractional (i/nx, j/ny, k/nz), *with* the valence compensation charges — the layout and
        content of :attr:`~mlexplore.dft.LDOSResult.density_reference` (``augment=True``). Shape
        ``(nx, ny, nz)`` for a spin-paired run; ``(2, nx, ny, nz)`` (one density per spin channel)
        for a spin-polarised one.
    band_energy : float
        Σ w f ε (eV), GPAW's absolute energy scale (e.g. from the DOS of the LDOS).
    entropy_energy : float
        The electronic entropy term −T·S (eV, ≤ 0), e.g. :func:`fermi_dirac_entropy_energy`.
    renormalize : bool
        Scale ``density`` to the DFT's valence electron count first. Otherwise a count off by more
        than ``charge_tolerance`` raises :class:`InputError` (GPAW's plane-wave Hartree term drops the
        G = 0 component, i.e. adds a uniform neutralising background, so a charged density would
        silently get an energy).
    charge_tolerance : float
        Allowed |∫ n dr − N_valence| (electrons per cell) without ``renormalize``.

    Returns
    -------
    dict of str to float
        In eV: ``kinetic`` (E_band + ``kinetic_correction``), ``kinetic_correction``, ``coulomb``,
        ``zero``, ``xc``, ``entropy`` (−TS as given), ``band`` (as given), ``free_energy`` (the sum of
        kinetic, coulomb, zero, xc and entropy, GPAW's ``free_energy`` convention, relative to the
        reference atoms), ``energy`` (GPAW's extrapolation to zero width: ``free_energy`` +
        ``extrapolate_factor`` × −TS, as ``get_potential_energy()``), and ``electrons`` (∫ n dr of the
        density used, after renormalisation) and ``electrons_reference`` (N_valence).
    """
    band_energy = _finite_float(band_energy, "band_energy")
    entropy_energy = _finite_float(entropy_energy, "entropy_energy")
    return _energy_terms(calc, density, band_energy, entropy_energy, renormalize, charge_tolerance, harris=False)


def _energy_terms(calc: Any, density: Any, band_energy: float | None, entropy_energy: float | None,
                  renormalize: bool, charge_tolerance: float, harris: bool) -> dict[str, float]:
    from ase.units import Bohr, Ha

    charge_tolerance = check_positive(charge_tolerance, "charge_tolerance", zero=True)
    calc, tmp = as_new_api(calc)
    try:
        dft = _checked_dft(calc)
        ref = dft.density
        grid = ref.nt_sR.desc
        shape = tuple(int(n) for n in grid.size_c)
        nd = ref.ndensities
        want = shape if nd == 1 else (nd,) + shape
        try:
            n_in = np.array(density, dtype=float)
        except (TypeError, ValueError):
            raise InputError("density must be an array of numbers", field="density") from None
        if n_in.shape != want:
            raise InputError(f"density has shape {n_in.shape}, the calculation's grid needs {want}"
                             + ("" if nd == 1 else " (one density per spin channel)"), field="density")
        if not np.isfinite(n_in).all():
            raise InputError("density holds NaN or inf", field="density")
        n_in = n_in.reshape((nd,) + shape)
        dv = grid.dv * Bohr ** 3  # Å³ per voxel

        ghat, coefs = _valence_compensation(dft)
        comp = grid.zeros(nd)
        for s in range(nd):
            ghat.add_to(comp[s], coefs[s])
        n_ref = float(ref.nvalence - ref.charge)  # valence electrons (GPAW's count)
        n_got = float(n_in.sum() * dv)
        if renormalize:
            if not n_got > 0:
                raise InputError(f"density integrates to {n_got} electrons: cannot renormalise", field="density")
            n_in = n_in * (n_ref / n_got)
            n_got = n_ref
        elif abs(n_got - n_ref) > charge_tolerance:
            raise InputError(f"density integrates to {n_got:.6f} electrons, the calculation has {n_ref:.6f} "
                             f"(tolerance {charge_tolerance}): pass renormalize=True or fix the density",
                             field="density")

        trial = _trial_density(ref, n_in * Bohr ** 3 - comp.data + ref.nct_R.data)
        potential, energies, _ = dft.pot_calc.calculate(trial, dft.ibzwfs)
        if harris:
            band_energy, entropy_energy = _diagonalise(calc, trial, potential)
        energies.set(band=band_energy / Ha, entropy=entropy_energy / Ha, extrapolation=0.0)
        e = {k: float(v) * Ha for k, v in energies._energies.items()}
        free = float(energies.total_free) * Ha
        factor = float(getattr(dft.scf_loop.occ_calc, "extrapolate_factor", 0.0))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {"kinetic": band_energy + e["kinetic_correction"], "kinetic_correction": e["kinetic_correction"],
            "coulomb": e["coulomb"], "zero": e["zero"], "xc": e["xc"], "entropy": entropy_energy,
            "band": band_energy, "free_energy": free, "energy": free + factor * entropy_energy,
            "electrons": n_got, "electrons_reference": n_ref}


def total_energy_from_density(calc: Any, density: Any, band_energy: float, entropy_energy: float, *,
                              renormalize: bool = False, charge_tolerance: float = 1e-2) -> float:
    """GPAW's total free energy (eV) for a given valence density, band energy and −TS, with the
    atomic density matrices D_a of the converged ``calc`` held fixed (module docstring).

    ``F = E_band − ∫ ṽ[ñ] (ñ − ñ_c) + E_H[ñ + Σ Q ĝ] + E_xc[ñ] + ∫ v̄ ñ + Σ_a ΔE^a[D_a, ñ] − TS`` with
    ñ = ``density`` − (the reference valence compensation charges) + ñ_c, evaluated by GPAW's own
    potential calculator; the same reference (GPAW's atoms) as ``get_potential_energy()``. Fed the
    DFT's own density (:attr:`~mlexplore.dft.LDOSResult.density_reference`), band energy and −TS it
    returns GPAW's free energy to rounding; the error is first order in a density error at fixed
    band energy (not variational). One evaluation: ≈ 0.06 s (4-atom Al, 15³ grid, PW 250 eV).

    Parameters
    ----------
    calc, density, band_energy, entropy_energy, renormalize, charge_tolerance
        As :func:`density_energy_terms`.

    Returns
    -------
    float
        The free energy F (eV), GPAW's ``free_energy`` convention (for the extrapolated ``energy``
        use :func:`density_energy_terms`).
    """
    return density_energy_terms(calc, density, band_energy, entropy_energy, renormalize=renormalize,
                                charge_tolerance=charge_tolerance)["free_energy"]


def fermi_dirac_entropy_energy(dos_values: Any, energies: Any, e_fermi: float, kT: float) -> float:
    """The electronic entropy term −T·S (eV) of a DOS at Fermi–Dirac occupations.

    ``−TS = kT ∫ D(E) [f ln f + (1 − f) ln(1 − f)] dE`` (≤ 0), summed on the uniform grid (rectangle
    rule: the integrand is as smooth as the DOS, and −TS is the small term). For discrete levels,
    ``D(E) = Σ w δ(E − ε)``, it is GPAW's Fermi–Dirac ``entropy`` energy.

    Parameters
    ----------
    dos_values : array_like
        D(E) (states / eV), shape ``(n_E,)``.
    energies : array_like
        Uniform energy grid (eV).
    e_fermi, kT : float
        Fermi level and electronic temperature (eV); kT = 0 gives 0.

    Returns
    -------
    float
        −T·S (eV).
    """
    e, step = check_energy_grid(energies)
    kT = check_positive(kT, "kT", zero=True)
    e_fermi = _finite_float(e_fermi, "e_fermi")
    d = np.asarray(dos_values, dtype=float)
    if d.shape != e.shape:
        raise InputError(f"dos_values has shape {d.shape}, the energy grid {e.shape}", field="dos_values")
    if kT == 0:
        return 0.0
    f = np.asarray(fermi_dirac(e, e_fermi, kT), dtype=float)
    return float(kT * step * np.sum(d * _f_log_f(f)))


def _f_log_f(f: np.ndarray) -> np.ndarray:
    """f ln f + (1 − f) ln(1 − f), 0 at f = 0 and 1."""
    f = np.clip(f, 0.0, 1.0)
    out = np.zeros_like(f)
    inside = (f > 0) & (f < 1)
    g = f[inside]
    out[inside] = g * np.log(g) + (1 - g) * np.log1p(-g)
    return out


def _trial_density(ref: Any, nt_data: np.ndarray) -> Any:
    """A GPAW ``Density`` with pseudo density ``nt_data`` (bohr⁻³, with ñ_c; the density channels)
    and everything else — D_a included — shared with ``ref`` (nothing of ``ref`` is modified)."""
    from gpaw.new.density import Density

    nt_sR = ref.nt_sR.new()
    nt_sR.data[:] = ref.nt_sR.data
    nt_sR.data[:ref.ndensities] = nt_data
    return Density(nt_sR, None, ref.D_asii, ref.charge, ref.nvalence, ref.delta_aiiL, ref.delta0_a,
                   ref.N0_aii, ref.n_aj, ref.l_aj, ref.nct_aX, ref.tauct_aX)


def _diagonalise(calc: Any, trial: Any, potential: Any) -> tuple[float, float]:
    """``(E_band, −TS)`` (eV) of the Kohn–Sham Hamiltonian of ``potential`` (with the reference D_a in
    its atomic part), diagonalised non-self-consistently with GPAW's ``fixed_density`` machinery, the
    Fermi level re-found for the valence count. ``calc`` is left as it was."""
    from ase.units import Ha
    from gpaw.new.energies import DFTEnergies

    dft = calc.dft
    saved = dft.density, dft.potential, dft.energies
    try:
        dft.density, dft.potential = trial, potential
        dft.energies = DFTEnergies(**saved[2]._energies)  # fixed_density's SCF loop writes into it
        fixed = calc.fixed_density(txt=None, update_fermi_level=True)
    finally:
        dft.density, dft.potential, dft.energies = saved
    done = fixed.dft.energies._energies
    return float(done["band"]) * Ha, float(done["entropy"]) * Ha


def harris_foulkes_energy_terms(calc: Any, density: Any, *, renormalize: bool = False,
                                charge_tolerance: float = 1e-2) -> dict[str, float]:
    """The Harris–Foulkes free energy (eV), term by term: :func:`density_energy_terms` with E_band and
    −TS not given but computed from the eigenvalues of the Kohn–Sham Hamiltonian *of the input
    density* (one non-self-consistent diagonalisation, GPAW's ``fixed_density``, Fermi level re-found
    for the valence count), the atomic density matrices D_a held at the DFT's.

    Unlike the MALA form this is stationary at the self-consistent density: a density error δn gives
    an energy error of second order in δn (module docstring, measured). It needs wave functions, so it
    is a check of a predicted density, not an LDOS-only route: one evaluation costs a non-self-consistent
    band-structure run (≈ 2–4 s for 4-atom Al, k 3×3×3, PW 250 eV, one core).

    Parameters
    ----------
    calc, density, renormalize, charge_tolerance
        As :func:`density_energy_terms`.

    Returns
    -------
    dict of str to float
        As :func:`density_energy_terms`, with ``band`` and ``entropy`` from the diagonalisation.
    """
    return _energy_terms(calc, density, None, None, renormalize, charge_tolerance, harris=True)
