"""The local density of states (LDOS) of a converged GPAW calculation, the training target of a
MALA-style surrogate (Ellis et al., *Phys. Rev. B* **104**, 035120 (2021)), with the references
its observables must reproduce.

``compute_ldos(calc)`` evaluates, on GPAW's real-space grid of the wave functions,

    d(r, E) = Σ_nk w_k [ |ψ̃_nk(r)|² + Σ_a Σ_L Q^a_L,nk ĝ^a_L(r) ] g(E − ε_nk)

with ``g`` a normalised Gaussian of standard deviation ``sigma`` and ``w_k`` the k-point weight
times the spin degeneracy. ψ̃ are GPAW's *pseudo* wave functions and the second term is GPAW's
compensation charge of each state (``Q^a_L,nk = Σ_ij P^a*_ni P^a_nj Δ^a_ijL``, on the same
Gaussian-shaped ``ĝ^a_L`` that GPAW's Poisson solver uses). Why this and not the bare pseudo or the
all-electron LDOS:

* The bare pseudo LDOS does not count electrons: PAW pseudo wave functions are normalised with
  the overlap operator, ⟨ψ̃|S|ψ̃⟩ = 1, not ⟨ψ̃|ψ̃⟩ = 1. For FCC Al (LDA, PW 200 eV, k 3×3×3) Σ f ∫|ψ̃|²
  is 3.046 electrons instead of 3 (+1.5 %), and differently per state (+3.1 % at the bottom of the
  band, +1.2 % higher up), so its DOS is not the DOS. The compensation term restores each state's
  norm exactly (its monopole is the PAW charge deficit) while staying smooth on the coarse grid.
* That is what MALA's data are: Quantum ESPRESSO's ``pp.x`` LDOS (``local_dos.f90``) adds the
  ultrasoft/PAW augmentation charges (``becsum`` → ``addusdens``) to the smooth |ψ|², so the
  LDOS integrates to the electron count. GPAW's compensation charges are the analogue (right
  multipoles up to l = 2, Gaussian radial shape instead of QE's pseudised augmentation functions).
* The all-electron LDOS would need GPAW's partial-wave reconstruction on a much finer grid (the 3s
  nodes of Al within ~0.5 Å of the nucleus): hundreds of times more grid points, and a field no
  uniform-grid surrogate should learn.

``augment=False`` gives the bare pseudo LDOS (its density is GPAW's valence pseudo density
``ñ − ñ_c``; its DOS is off by the charge deficit). The density reference always matches the
choice: the valence part of GPAW's ``get_pseudo_density()`` — which, in GPAW 26's new API, is
ñ (with the smooth core ñ_c) *plus* compensation charges (with the core's) — i.e. ``ñ − ñ_c``, plus
the valence compensation charges when ``augment``. ``get_all_electron_density()`` is not
comparable to either.

Spin: ``spin=None`` sums the channels (for a spin-paired run, the one channel with degeneracy 2);
``spin=0`` or ``1`` gives one channel of a spin-polarised run, with that channel's references
(electron count, band energy, density, Fermi level). Non-collinear runs are refused.

Symmetry: GPAW keeps the irreducible k-points; summing their |ψ̃|² is not symmetric, so the LDOS is
symmetrised with the run's point-group operations (as GPAW does its density). Time reversal needs
nothing (|ψ_−k|² = |ψ_k|²).

Memory: the LDOS itself, ``n_grid × n_E`` numbers (``dtype``), plus one block of ``block_bands``
wave functions on the grid and their Gaussian weights; the accumulation, compensation and
symmetrisation steps work on slices of the energy axis of at most ``chunk_mb`` (peak ≈ LDOS +
3 × ``chunk_mb``). Each state adds only to the ±8σ of energies its Gaussian reaches. Measured on
one core (GPAW 26.7): FCC Al, 4-atom cubic cell, PW 200 eV, k 3×3×3 (48 symmetry operations),
21³ grid, σ = 0.1 eV, 268 energies: 0.41 s after a 1.9 s SCF, LDOS 18.9 MB, numpy peak 61 MB;
σ = 0.05 eV, 513 energies: LDOS 36.2 MB.

Uses GPAW 26's new-API objects (``calc.dft``: ``ibzwfs``, ``density``, ``setups``); a legacy
calculator (``GPAW(..., legacy_gpaw=True)``, as :func:`mlexplore.dft.gpaw_calculator` makes) is
written to a temporary ``.gpw`` file with its wave functions and read back with the new API. Serial
runs and fully periodic cells only.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.ldos import LDOSObservables, check_energy_grid, dos, gaussian_dos, ldos_observables
from ..errors import InputError, check_positive, check_whole
from ..io.files import atomic_write

__all__ = ["LDOSResult", "compute_ldos", "default_energy_grid", "LDOS_FORMAT"]

#: the ``format`` entry of a saved LDOS file
LDOS_FORMAT = "mlexplore-ldos-1"

#: a state's Gaussian is dropped beyond this many σ from the grid (exp(-32) ≈ 1e-14)
_GAUSS_CUT = 8.0


@dataclass
class LDOSResult:
    """An LDOS on a real-space grid with the DFT references it must reproduce.

    Attributes
    ----------
    ldos : ndarray
        d(r, E) in states / (eV Å³), shape ``(nx, ny, nz, n_E)``; voxel (i, j, k) sits at
        ``(i/nx, j/ny, k/nz)`` in fractional coordinates of ``cell``.
    energies : ndarray
        The uniform energy grid (eV), on GPAW's absolute scale (not relative to ``e_fermi``).
    sigma : float
        Standard deviation of the Gaussian broadening (eV).
    kT : float
        Electronic temperature of the Fermi–Dirac occupations (eV).
    cell : ndarray
        Cell vectors as rows (Å), shape ``(3, 3)``.
    positions : ndarray
        Atom positions (Å), shape ``(n_atoms, 3)``.
    numbers : ndarray
        Atomic numbers, shape ``(n_atoms,)``.
    spin : int or None
        The spin channel (``None``: all channels summed).
    augmented : bool
        Whether the PAW compensation charges are included (module docstring).
    e_fermi : float
        GPAW's Fermi level (eV).
    n_electrons : float
        Valence electrons in the selected channel(s): Σ w_k f_nk.
    band_energy : float
        Σ w_k f_nk ε_nk (eV), GPAW's occupations and eigenvalues.
    energy : float
        GPAW's total energy extrapolated to zero width (eV).
    free_energy : float
        GPAW's total free energy (eV).
    dos_reference : ndarray
        Σ w_k g(E − ε_nk) on ``energies`` (states / eV), the same Gaussian as the LDOS.
    density_reference : ndarray
        GPAW's valence pseudo density of the selected channel(s) on the LDOS grid (electrons / Å³),
        with the valence compensation charges when ``augmented``.
    eigenvalues : ndarray
        ε_nk (eV), shape ``(n_kpoints × n_channels, n_bands)`` (selected channels only).
    state_weights : ndarray
        w_k × spin degeneracy per row of ``eigenvalues`` (electrons per state at full occupation).
    occupations : ndarray
        f_nk between 0 and 1, shaped like ``eigenvalues``.
    seconds : float
        Wall time ``compute_ldos`` took (s); 0 for a result built otherwise.
    """

    ldos: np.ndarray
    energies: np.ndarray
    sigma: float
    kT: float
    cell: np.ndarray
    positions: np.ndarray
    numbers: np.ndarray
    spin: int | None
    augmented: bool
    e_fermi: float
    n_electrons: float
    band_energy: float
    energy: float
    free_energy: float
    dos_reference: np.ndarray
    density_reference: np.ndarray
    eigenvalues: np.ndarray
    state_weights: np.ndarray
    occupations: np.ndarray
    seconds: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        if self.ldos.ndim != 4:
            raise InputError(f"ldos must have shape (nx, ny, nz, n_E), got {self.ldos.shape}", field="ldos")
        if self.ldos.shape[-1] != len(self.energies):
            raise InputError(f"ldos has {self.ldos.shape[-1]} energies but the grid {len(self.energies)}",
                             field="energies")
        if self.density_reference.shape != self.ldos.shape[:3]:
            raise InputError(f"density_reference has shape {self.density_reference.shape}, the LDOS grid is "
                             f"{self.ldos.shape[:3]}", field="density_reference")
        if self.dos_reference.shape != self.energies.shape:
            raise InputError("dos_reference must have one value per energy", field="dos_reference")

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """``(nx, ny, nz)``, the real-space grid."""
        return tuple(int(n) for n in self.ldos.shape[:3])  # type: ignore[return-value]

    @property
    def voxel_volume(self) -> float:
        """Volume of one grid cell (Å³)."""
        return float(abs(np.linalg.det(self.cell))) / int(np.prod(self.grid_shape))

    @property
    def nbytes(self) -> int:
        """Bytes the LDOS array takes."""
        return int(self.ldos.nbytes)

    def grid_positions(self) -> np.ndarray:
        """Cartesian positions of the voxels (Å), shape ``(nx, ny, nz, 3)``."""
        axes = [np.arange(n) / n for n in self.grid_shape]
        frac = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        return frac @ self.cell

    def dos(self) -> np.ndarray:
        """The LDOS integrated over the cell, D(E) (states / eV)."""
        return dos(self.ldos, self.voxel_volume)

    def observables(self, method: str = "cubic", e_fermi: float | None = None) -> LDOSObservables:
        """DOS, Fermi level (holding :attr:`n_electrons`), electron count, band energy and density of
        the LDOS (:func:`mlexplore.analysis.ldos.ldos_observables`); ``e_fermi`` fixes the level."""
        return ldos_observables(self.ldos, self.energies, self.voxel_volume, self.n_electrons, self.kT,
                                method=method, e_fermi=e_fermi)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result to ``path`` as a compressed ``.npz`` file, atomically (a failed write leaves
        any earlier file as it was); returns the path."""
        path = Path(path)
        arrays = {"format": np.array(LDOS_FORMAT), "spin": np.array(-1 if self.spin is None else self.spin)}
        for name in _ARRAY_FIELDS + _FLOAT_FIELDS:
            arrays[name] = np.asarray(getattr(self, name))
        arrays["augmented"] = np.array(bool(self.augmented))
        with atomic_write(path, text=False) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LDOSResult:
        """Read a file written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                fmt = str(data["format"]) if "format" in data.files else None
                if fmt != LDOS_FORMAT:
                    raise InputError(f"not an LDOS file of format {LDOS_FORMAT!r} (format {fmt!r})", path=path)
                missing = [k for k in _ARRAY_FIELDS + _FLOAT_FIELDS + ("spin", "augmented") if k not in data.files]
                if missing:
                    raise InputError(f"LDOS file lacks {missing}", path=path)
                values: dict[str, Any] = {k: data[k] for k in _ARRAY_FIELDS}
                values.update({k: float(data[k]) for k in _FLOAT_FIELDS})
                spin = int(data["spin"])
                values["spin"] = None if spin < 0 else spin
                values["augmented"] = bool(data["augmented"])
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, (InputError, FileNotFoundError)):
                raise
            raise InputError(f"could not be read as an LDOS file: {exc}", path=path) from None
        return cls(**values)


_ARRAY_FIELDS = ("ldos", "energies", "cell", "positions", "numbers", "dos_reference", "density_reference",
                 "eigenvalues", "state_weights", "occupations")
_FLOAT_FIELDS = ("sigma", "kT", "e_fermi", "n_electrons", "band_energy", "energy", "free_energy", "seconds")


def default_energy_grid(eigenvalues: Any, e_fermi: float, kT: float, sigma: float, spacing: float | None = None,
                        below: float | None = None, above: float | None = None) -> np.ndarray:
    """A uniform energy grid (eV) covering the occupied band and a margin above the Fermi level.

    From ``min(ε) − below`` to ``E_F + above``, with ``below = 5σ`` and ``above = 10 kT + 5σ`` by
    default (there f(E) < 5e-5 and a Gaussian is below 4e-6 of its peak); spacing ``σ / 2`` by
    default (a Gaussian of width σ sampled every σ/2 integrates to 1 within 1e-8). Both ends are
    rounded outwards to whole multiples of the spacing, so grids of different structures with the
    same spacing share their points. For a training set use one fixed grid for all structures.

    Parameters
    ----------
    eigenvalues : array_like
        Kohn–Sham eigenvalues (eV), any shape.
    e_fermi, kT, sigma : float
        Fermi level, electronic temperature and Gaussian width (eV).
    spacing, below, above : float, optional
        Grid spacing and margins (eV).

    Returns
    -------
    ndarray
        The grid (eV).
    """
    sigma = check_positive(sigma, "sigma")
    kT = check_positive(kT, "kT", zero=True)
    spacing = sigma / 2 if spacing is None else check_positive(spacing, "spacing")
    below = 5 * sigma if below is None else check_positive(below, "below", zero=True)
    above = 10 * kT + 5 * sigma if above is None else check_positive(above, "above", zero=True)
    eps = np.asarray(eigenvalues, dtype=float)
    if eps.size == 0 or not np.isfinite(eps).all():
        raise InputError("eigenvalues must be a non-empty array of finite numbers", field="eigenvalues")
    lo = math.floor((eps.min() - below) / spacing)
    hi = math.ceil((float(e_fermi) + above) / spacing)
    if hi <= lo:
        raise InputError(f"the Fermi level {e_fermi} eV lies below the lowest eigenvalue {eps.min()} eV",
                         field="e_fermi")
    return np.arange(lo, hi + 1) * spacing


def as_new_api(calc: Any) -> tuple[Any, Any]:
    """``(calculator, tempdir)``: the new-API calculator (a legacy one written to a .gpw and read back;
    the temporary directory, to be removed by the caller, or None)."""
    try:
        from gpaw.new.ase_interface import ASECalculator
        from gpaw.new.ase_interface import GPAW as NewGPAW
    except ImportError as exc:
        raise ImportError("GPAW is not installed: install the extra mlexplore[dft] with scripts/install_gpaw.sh"
                          ) from exc
    if isinstance(calc, ASECalculator):
        return calc, None
    if not type(calc).__module__.startswith("gpaw") or not hasattr(calc, "write"):
        raise InputError(f"compute_ldos needs a GPAW calculator, got {type(calc).__name__}", field="calc")
    tmp = tempfile.TemporaryDirectory(prefix="mlexplore-ldos-")
    path = Path(tmp.name) / "calc.gpw"
    calc.write(str(path), mode="all")
    return NewGPAW(str(path), txt=None), tmp


def _fermi_dirac_width(dft: Any, kT: float | None) -> float:
    occ = dft.scf_loop.occ_calc
    occ = getattr(occ, "occ", occ).todict()  # the new API wraps the old occupation-number calculator
    name, width = occ.get("name", "fermi-dirac"), float(occ.get("width", 0.0))
    if kT is not None:
        return check_positive(kT, "kT", zero=True)
    if name != "fermi-dirac" and width != 0.0:
        raise InputError(f"the calculation used {name!r} occupations (width {width} eV), but the LDOS observables "
                         "use Fermi–Dirac ones: pass kT explicitly (and expect its references to differ)", field="kT")
    return width


def _grid_permutations(grid: Any, rotation_scc: np.ndarray, translation_sc: np.ndarray) -> list[np.ndarray]:
    """For each symmetry operation, the flat grid indices ``p`` with (a∘op)[r] = a[p[r]], in GPAW's
    own convention: symmetrising the index field with the pair (identity, op) gives (a + a∘op) / 2."""
    index = np.arange(int(np.prod(grid.size_c)), dtype=float)
    identity, zero = np.eye(3, dtype=int), np.zeros(3)
    perms = []
    for r_cc, t_c in zip(rotation_scc, translation_sc):
        field = grid.empty()
        field.data[:] = index.reshape(field.data.shape)
        field.symmetrize(np.array([identity, r_cc]), np.array([zero, t_c]))
        perms.append(np.rint(2 * field.data.reshape(-1) - index).astype(np.intp))
    return perms


def _symmetrize(ldos: np.ndarray, grid: Any, rotation_scc: np.ndarray, translation_sc: np.ndarray,
                chunk: int) -> None:
    """Average ``ldos`` (n_grid, n_E) in place over the point-group operations, ``chunk`` energies at
    a time (as GPAW symmetrises its density; one gather per operation instead of one FFT-grid pass
    per operation and energy)."""
    perms = _grid_permutations(grid, rotation_scc, translation_sc)
    for j1 in range(0, ldos.shape[1], chunk):
        j2 = min(j1 + chunk, ldos.shape[1])
        acc = np.zeros((ldos.shape[0], j2 - j1))
        for p in perms:
            acc += ldos[p, j1:j2]
        ldos[:, j1:j2] = acc / len(perms)


def compute_ldos(calc: Any, *, energies: Any = None, sigma: float = 0.1, spacing: float | None = None,
                 spin: int | None = None, augment: bool = True, kT: float | None = None,
                 dtype: Any = np.float64, block_bands: int = 16, chunk_mb: float = 16.0) -> LDOSResult:
    """The LDOS of a converged GPAW calculation on its wave-function grid, with references.

    Parameters
    ----------
    calc : GPAW calculator
        A converged GPAW calculation (new or legacy API; plane waves or finite differences — LCAO
        works too, but its basis functions integrate on the grid only to ~1e-5, so its DOS is off
        by that much), serial, periodic in all three directions, collinear. Its bands must reach above the top of
        the energy grid at every k-point (else :class:`InputError`: raise ``nbands``); GPAW
        converges only the occupied bands by default, so converge the ones the grid covers too
        (``convergence={'bands': ...}``) when the empty part of the LDOS matters.
    energies : array_like, optional
        Uniform, ascending energy grid (eV, GPAW's absolute scale). Default:
        :func:`default_energy_grid` (occupied band − 5σ to E_F + 10 kT + 5σ, spacing σ/2).
    sigma : float
        Standard deviation of the Gaussian broadening (eV).
    spacing : float, optional
        Spacing of the default grid (eV); ignored with ``energies``.
    spin : {None, 0, 1}
        ``None``: all spin channels summed; 0 or 1: that channel of a spin-polarised run.
    augment : bool
        Include each state's PAW compensation charge, so that the LDOS counts electrons (module
        docstring); ``False``: the bare pseudo LDOS.
    kT : float, optional
        Electronic temperature (eV) recorded for the observables; default: the run's Fermi–Dirac width.
    dtype : numpy dtype
        float64 (default) or float32 for the LDOS array (the references are float64).
    block_bands : int
        Bands transformed to the grid at a time.
    chunk_mb : float
        Memory bound (MiB) for the compensation-charge and symmetrisation work arrays.

    Returns
    -------
    LDOSResult
    """
    t0 = time.perf_counter()
    sigma = check_positive(sigma, "sigma")
    block_bands = check_whole(block_bands, "block_bands", 1)
    chunk_mb = check_positive(chunk_mb, "chunk_mb")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InputError(f"dtype must be float32 or float64, got {dtype}", field="dtype")
    if spin not in (None, 0, 1):
        raise InputError(f"spin must be None, 0 or 1, got {spin!r}", field="spin")
    calc, tmp = as_new_api(calc)
    try:
        try:
            dft = calc.dft
        except AttributeError:
            raise InputError("the calculator has no converged calculation: run it first "
                             "(atoms.get_potential_energy())", field="calc") from None
        result = _compute(calc, dft, energies, sigma, spacing, spin, augment, kT, dtype, block_bands, chunk_mb)
    finally:
        if tmp is not None:
            tmp.cleanup()
    result.seconds = time.perf_counter() - t0
    return result


def _compute(calc: Any, dft: Any, energies: Any, sigma: float, spacing: float | None, spin: int | None,
             augment: bool, kT: float | None, dtype: np.dtype, block_bands: int, chunk_mb: float) -> LDOSResult:
    from ase.units import Bohr, Ha
    from gpaw.core.atom_arrays import AtomArraysLayout

    ibzwfs, density = dft.ibzwfs, dft.density
    if dft.comm.size != 1:
        raise InputError("compute_ldos runs on serial GPAW calculations only", field="calc")
    if not ibzwfs.collinear:
        raise InputError("non-collinear calculations are not supported (no spin channels to resolve)", field="calc")
    atoms = calc.atoms
    if not np.all(atoms.pbc):
        raise InputError("compute_ldos needs a cell periodic in all three directions", field="calc")
    nspins = ibzwfs.nspins
    if spin is not None and spin >= nspins:
        raise InputError(f"spin={spin} but the calculation has {nspins} spin channel(s)", field="spin")
    kT = _fermi_dirac_width(dft, kT)
    degeneracy = ibzwfs.spin_degeneracy
    selected = [wfs for wfs in ibzwfs if spin is None or wfs.spin == spin]
    eig = np.array([wfs.eig_n for wfs in selected]) * Ha
    occ = np.array([wfs.occ_n for wfs in selected])
    weights = np.array([wfs.weight * degeneracy for wfs in selected])
    fermi_levels = np.atleast_1d(ibzwfs.fermi_levels) * Ha
    if len(fermi_levels) > 1 and spin is None and abs(fermi_levels[0] - fermi_levels[1]) > 1e-9:
        raise InputError("this run has one Fermi level per spin (fixed magnetic moment): pass spin=0 or 1",
                         field="spin")
    e_fermi = float(fermi_levels[0 if spin is None or len(fermi_levels) == 1 else spin])

    if energies is None:
        energies = default_energy_grid(eig, e_fermi, kT, sigma, spacing)
    energies, _ = check_energy_grid(energies)
    top = eig.max(axis=1).min()
    if top < energies[-1]:
        raise InputError(f"the highest band reaches only {top:.3f} eV at some k-point, below the top of the energy "
                         f"grid {energies[-1]:.3f} eV: states are missing from the LDOS there; raise nbands or "
                         "lower the grid's top", field="energies")

    grid = density.nt_sR.desc
    shape = tuple(int(n) for n in grid.size_c)
    n_grid, n_e = int(np.prod(shape)), energies.size
    chunk = max(1, int(chunk_mb * 2 ** 20 // (8 * n_grid)))  # energies per work array
    ldos = np.zeros((n_grid, n_e), dtype=dtype)
    norm = 1.0 / (sigma * math.sqrt(2 * math.pi))
    delta_aiiL = density.delta_aiiL
    charges = [np.zeros((n_e, d.shape[2])) for d in delta_aiiL] if augment else []
    reach = _GAUSS_CUT * sigma
    for wfs, eps, w in zip(selected, eig, weights):
        bands = np.flatnonzero((eps > energies[0] - reach) & (eps < energies[-1] + reach))
        for n1 in range(int(bands[0]), int(bands[-1]) + 1, block_bands) if bands.size else ():
            n2 = min(n1 + block_bands, int(bands[-1]) + 1)
            # the energies these bands' Gaussians reach (eigenvalues are sorted within a k-point)
            e1 = int(np.searchsorted(energies, eps[n1:n2].min() - reach))
            e2 = int(np.searchsorted(energies, eps[n1:n2].max() + reach))
            x = (energies[None, e1:e2] - eps[n1:n2, None]) / sigma
            c = (w * norm) * np.exp(-0.5 * x * x)  # (bands, energies) in 1/eV
            psit = dft.wave_functions(n1=n1, n2=n2, kpt=wfs.k, spin=wfs.spin).data  # Å^-3/2
            dens = (psit.real ** 2 + psit.imag ** 2 if np.iscomplexobj(psit) else psit ** 2).reshape(n2 - n1, -1)
            for j1 in range(e1, e2, chunk):
                j2 = min(j1 + chunk, e2)
                ldos[:, j1:j2] += dens.T @ c[:, j1 - e1:j2 - e1]
            for a, P_ni in wfs.P_ani.items() if augment else ():
                P = np.asarray(P_ni[n1:n2])
                q = np.einsum("ni,nj,ijL->nL", P.conj(), P, delta_aiiL[a]).real
                charges[a][e1:e2] += c.T @ q
    atomdist = density.D_asii.layout.atomdist
    if augment:
        ghat = dft.setups.create_compensation_charges(grid, dft.relpos_ac, atomdist)
        for j1 in range(0, n_e, chunk):
            j2 = min(j1 + chunk, n_e)
            part = grid.zeros(j2 - j1)
            coefs = AtomArraysLayout([(j2 - j1, q.shape[1]) for q in charges], atomdist=atomdist).empty()
            for a, q in enumerate(charges):
                coefs[a][:] = q[j1:j2]
            ghat.add_to(part, coefs)
            ldos[:, j1:j2] += (part.data.reshape(j2 - j1, -1).T * Bohr ** -3).astype(dtype, copy=False)
    symmetries = ibzwfs.ibz.symmetries
    if len(symmetries.rotation_scc) > 1:
        _symmetrize(ldos, grid, symmetries.rotation_scc, symmetries.translation_sc, chunk)
    channels = range(nspins) if spin is None else [spin]
    reference = sum(density.nt_sR.data[s] - density.nct_R.data for s in channels)
    if augment:
        layout = AtomArraysLayout([d.shape[2] for d in delta_aiiL], atomdist=atomdist)
        coefs = layout.empty()
        for a, D_sii in density.D_asii.items():
            coefs[a][:] = sum(np.einsum("ij,ijL->L", D_sii[s].real, delta_aiiL[a]) for s in channels)
        extra = grid.zeros()
        ghat.add_to(extra, coefs)
        reference = reference + extra.data
    return LDOSResult(
        ldos=ldos.reshape(shape + (n_e,)), energies=energies, sigma=sigma, kT=kT,
        cell=np.array(atoms.cell, dtype=float), positions=atoms.positions.copy(),
        numbers=atoms.numbers.copy(), spin=spin, augmented=bool(augment), e_fermi=e_fermi,
        n_electrons=float(np.sum(weights[:, None] * occ)), band_energy=float(np.sum(weights[:, None] * occ * eig)),
        energy=float(calc.get_potential_energy()), free_energy=float(calc.get_property("free_energy", atoms)),
        dos_reference=gaussian_dos(eig, weights[:, None], energies, sigma),
        density_reference=np.asarray(reference, dtype=float) * Bohr ** -3,
        eigenvalues=eig, state_weights=weights, occupations=occ)
