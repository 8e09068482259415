"""Observables from a local density of states (LDOS), the target of a MALA-style surrogate.

The LDOS ``d(r, E)`` on a real-space grid (Ellis et al., *Phys. Rev. B* **104**, 035120 (2021),
Sec. II) holds, by integration over space or energy, the quantities a surrogate must reproduce:

* the density of states ``D(E) = ∫ d(r, E) dr`` (:func:`dos`),
* the electron count ``N = ∫ f(E; E_F, kT) D(E) dE`` (:func:`electron_count`) and the Fermi level
  that gives a prescribed count (:func:`fermi_level`),
* the band energy ``E_b = ∫ f(E) E D(E) dE`` (:func:`band_energy`),
* the electron density ``n(r) = ∫ f(E) d(r, E) dE`` (:func:`electron_density`),

with ``f`` the Fermi–Dirac occupation at the electronic temperature ``kT``. The functions work
on any LDOS, from DFT (:mod:`mlexplore.dft.ldos`) or from a network's prediction, as numpy arrays
or torch tensors (then the results stay tensors and keep their gradient with respect to the LDOS,
so that ``N``, ``E_b`` and ``n(r)`` can enter a training loss).

Units: energies in eV, lengths in Å; an LDOS in states / (eV Å³), a DOS in states / eV, a density
in electrons / Å³. Energies are absolute (the DFT code's zero), not relative to ``E_F``.

Conventions, after MALA's ``mala/targets`` (learnt from, not copied):

* **Space**: the integral over the cell is the plain sum over voxels times the voxel volume (exact
  for the band-limited, periodic fields of a plane-wave code).
* **Energy**: MALA's recommended ("analytical") rule takes the DOS as piecewise linear between the
  grid energies, zero one spacing beyond either end, and integrates each linear piece against the
  Fermi function *exactly* (MALA does it with polylogarithms; here a composite Gauss–Legendre rule
  on pieces no wider than ``kT`` near ``E_F`` gives the same to ~1e-13). That stays right when
  ``kT`` is much smaller than the spacing (room temperature on a 0.1 eV grid), where sampling ``f``
  on the grid does not, but the linear interpolant of a Gaussian-broadened DOS is itself off by
  O(ΔE² D''). ``method="cubic"`` (the default) integrates the cubic Lagrange interpolant the same
  exact way: for a DOS of Gaussians with σ = 2ΔE it cut the error 5–10 times (sum of 40 Gaussians,
  36 electrons, σ = 0.1 eV, ΔE = 0.05 eV: electron count off by 1.2e-4 instead of 6.2e-4 at
  kT = 0.1 eV, 6.3e-4 instead of 1.0e-2 at kT = 0). ``method="linear"`` is MALA's rule;
  ``method="trapezoid"`` samples ``f(E) E^k D(E)`` on the grid (MALA's ``"trapz"``): exact to
  ~1e-14 there when ``kT`` ≥ ΔE, wrong by up to ``f``'s jump when ``kT`` ≪ ΔE (0.1 electrons at kT = 0).
* **Fermi level**: bisection of ``N(E_F) − N`` over the grid's span, so any sign change is found
  even for a predicted DOS that is not positive everywhere (MALA uses a bracketing root finder too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, check_positive

__all__ = ["check_energy_grid", "fermi_dirac", "gaussian_dos", "dos", "integration_weights", "electron_count",
           "band_energy", "fermi_level", "electron_density", "LDOSObservables", "ldos_observables",
           "INTEGRATION_METHODS", "LDOSErrors", "ldos_errors"]

#: energy integration rules of :func:`integration_weights`
INTEGRATION_METHODS = ("cubic", "linear", "trapezoid")

#: beyond this many kT from E_F the Fermi function is 0 or 1 to within exp(-40) ≈ 4e-18
_FERMI_WINDOW = 40.0
#: Gauss–Legendre nodes per quadrature piece (exact for the piecewise-polynomial parts)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
#: relative tolerance on the uniformity of an energy grid
_UNIFORM_RTOL = 1e-6


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _as_array(x: Any, name: str) -> Any:
    """A torch tensor as it is, anything else as a float64 numpy array; finite values only."""
    if _is_torch(x):
        import torch

        if not bool(torch.isfinite(x).all()):
            raise InputError(f"{name} holds NaN or inf", field=name)
        return x
    a = np.asarray(x, dtype=float)
    if not np.isfinite(a).all():
        raise InputError(f"{name} holds NaN or inf", field=name)
    return a


def check_energy_grid(energies: Any) -> tuple[np.ndarray, float]:
    """``(grid, spacing)``: ``energies`` as a float64 array and its spacing (eV), after checking that
    it is an LDOS energy grid (1-D, at least 2 points, finite, ascending, uniform to 1e-6 of the
    spacing); else an :class:`InputError` naming ``energies``."""
    if _is_torch(energies):
        energies = energies.detach().cpu().numpy()
    e = np.asarray(energies, dtype=float)
    if e.ndim != 1 or e.size < 2:
        raise InputError(f"energies must be a 1-D grid of at least 2 points, got shape {e.shape}", field="energies")
    if not np.isfinite(e).all():
        raise InputError("energies hold NaN or inf", field="energies")
    step = (e[-1] - e[0]) / (e.size - 1)
    if not step > 0 or np.abs(np.diff(e) - step).max() > _UNIFORM_RTOL * step:
        raise InputError("energies must be uniformly spaced and ascending (an LDOS energy grid)", field="energies")
    return e, float(step)


def _check_kT(kT: Any) -> float:
    return check_positive(kT, "kT", zero=True)


def _check_method(method: str) -> str:
    if method not in INTEGRATION_METHODS:
        raise InputError(f"method must be one of {INTEGRATION_METHODS}, got {method!r}", field="method")
    return method


def _check_last_axis(values: Any, n_energies: int, name: str) -> None:
    if values.ndim < 1 or values.shape[-1] != n_energies:
        raise InputError(f"{name} must have the energy grid's {n_energies} points on its last axis, got shape "
                         f"{tuple(values.shape)}", field=name)


def fermi_dirac(energies: Any, e_fermi: float, kT: float) -> Any:
    """Fermi–Dirac occupation ``f(E) = 1 / (1 + exp((E − E_F) / kT))``, between 0 and 1.

    Parameters
    ----------
    energies : array_like or torch.Tensor
        Energies (eV), any shape.
    e_fermi : float
        Fermi level (eV).
    kT : float
        Electronic temperature as an energy (eV), ≥ 0; at 0 the step function (½ at ``E_F``).

    Returns
    -------
    ndarray or torch.Tensor
        The occupation, shaped like ``energies``; written as ``(1 − tanh((E − E_F) / 2kT)) / 2``,
        which never overflows.
    """
    kT = _check_kT(kT)
    e_fermi = float(e_fermi)
    if _is_torch(energies):
        import torch

        if kT == 0:
            return 0.5 * (1 - torch.sign(energies - e_fermi))
        return 0.5 * (1 - torch.tanh((energies - e_fermi) / (2 * kT)))
    e = np.asarray(energies, dtype=float)
    if kT == 0:
        return 0.5 * (1 - np.sign(e - e_fermi))
    return 0.5 * (1 - np.tanh((e - e_fermi) / (2 * kT)))


def gaussian_dos(eigenvalues: Any, weights: Any, energies: Any, sigma: float, chunk: int = 4096) -> np.ndarray:
    """Density of states ``D(E) = Σ_i w_i g(E − ε_i)`` from eigenvalues, with ``g`` a normalised Gaussian.

    This is the DOS a Gaussian-broadened LDOS must integrate to (``∫ d(r, E) dr``): use the same
    ``sigma`` as the LDOS.

    Parameters
    ----------
    eigenvalues : array_like
        Kohn–Sham eigenvalues ε_i (eV), any shape (e.g. ``(n_kpoints, n_bands)``).
    weights : array_like
        Weight of each state (k-point weight × spin degeneracy; electrons per state at full
        occupation), broadcastable to ``eigenvalues`` (e.g. shape ``(n_kpoints, 1)``).
    energies : array_like
        Energies (eV) at which to evaluate ``D``, 1-D (need not be uniform here).
    sigma : float
        Standard deviation of the Gaussian (eV), > 0.
    chunk : int
        States handled at a time (bounds the memory to ``chunk × len(energies)`` floats).

    Returns
    -------
    ndarray
        ``D(E)`` in states / eV, shape ``(len(energies),)``.
    """
    sigma = check_positive(sigma, "sigma")
    eps = _as_array(eigenvalues, "eigenvalues")
    try:
        w = np.broadcast_to(_as_array(weights, "weights"), eps.shape).reshape(-1)
    except ValueError:
        raise InputError(f"weights of shape {np.shape(weights)} do not broadcast to the eigenvalues' shape "
                         f"{eps.shape}", field="weights") from None
    eps = eps.reshape(-1)
    e = np.asarray(energies, dtype=float)
    if e.ndim != 1:
        raise InputError(f"energies must be 1-D, got shape {e.shape}", field="energies")
    out = np.zeros(e.size)
    norm = 1.0 / (sigma * math.sqrt(2 * math.pi))
    for i in range(0, eps.size, max(int(chunk), 1)):
        x = (e[None, :] - eps[i:i + chunk, None]) / sigma
        out += w[i:i + chunk] @ np.exp(-0.5 * x * x)
    return out * norm


def dos(ldos: Any, voxel_volume: float) -> Any:
    """Density of states ``D(E) = ∫ d(r, E) dr``, the voxel sum times the voxel volume.

    Parameters
    ----------
    ldos : array_like or torch.Tensor
        LDOS in states / (eV Å³), shape ``(..., n_energies)``: every axis but the last is a
        spatial one (``(nx, ny, nz, n_E)`` or ``(n_points, n_E)``).
    voxel_volume : float
        Volume of one grid cell (Å³): the cell volume over the number of grid points.

    Returns
    -------
    ndarray or torch.Tensor
        ``D(E)`` in states / eV, shape ``(n_energies,)``.
    """
    voxel_volume = check_positive(voxel_volume, "voxel_volume")
    ldos = _as_array(ldos, "ldos")
    if ldos.ndim < 1:
        raise InputError("ldos must have an energy axis", field="ldos")
    return ldos.reshape(-1, ldos.shape[-1]).sum(0) * voxel_volume


def _lagrange_basis(t: np.ndarray, order: int) -> dict[int, np.ndarray]:
    """Values at ``t`` ∈ [0, 1] (the position inside the interval [E_j, E_j+1]) of the interpolant's
    weights on the samples ``j + offset``: linear (2 points) or cubic Lagrange (4 points)."""
    if order == 1:
        return {0: 1 - t, 1: t}
    return {-1: -t * (t - 1) * (t - 2) / 6, 0: (t + 1) * (t - 1) * (t - 2) / 2,
            1: -(t + 1) * t * (t - 2) / 2, 2: (t + 1) * t * (t - 1) / 6}


def _interpolant_weights(e: np.ndarray, step: float, mu: float, kT: float, moment: int, order: int) -> np.ndarray:
    """∫ f(E) E^moment B_i(E) dE for the cardinal functions B_i of the piecewise linear (order 1) or
    cubic (order 3) interpolant of the samples, taken as zero beyond the grid, over the grid widened
    by 1 (linear) or 2 (cubic) spacings on either side (so that for f = 1 every weight is the
    spacing). Gauss–Legendre on pieces that never straddle a grid point or E_F and that are at most
    kT wide within ±40 kT of E_F (elsewhere f is 0 or 1 to 4e-18 and the integrand a polynomial)."""
    n = e.size
    pad = 1 if order == 1 else 2
    first, last = e[0] - pad * step, e[-1] + pad * step
    breaks = [first + step * np.arange(n + 2 * pad)]
    if first < mu < last:
        breaks.append(np.array([mu]))
    if kT > 0:
        lo, hi = max(first, mu - _FERMI_WINDOW * kT), min(last, mu + _FERMI_WINDOW * kT)
        if lo < hi:
            breaks.append(np.linspace(lo, hi, int(math.ceil((hi - lo) / kT)) + 1))
    b = np.unique(np.concatenate(breaks))
    b = b[(b >= first) & (b <= last)]
    a, z = b[:-1], b[1:]
    keep = z - a > 1e-12 * step
    a, z = a[keep], z[keep]
    mid, half = 0.5 * (a + z), 0.5 * (z - a)
    x = mid[:, None] + half[:, None] * _GL_X[None, :]
    j = np.floor((mid - e[0]) / step).astype(int)  # the piece lies in [E_j, E_j+1] (j may be a ghost index)
    t = (x - (e[0] + j[:, None] * step)) / step
    g = fermi_dirac(x, mu, kT) * (half[:, None] * _GL_W[None, :])
    if moment:
        g = g * x
    w = np.zeros(n)
    for offset, basis in _lagrange_basis(t, order).items():
        idx, s = j + offset, (g * basis).sum(1)
        ok = (idx >= 0) & (idx < n)
        w += np.bincount(idx[ok], weights=s[ok], minlength=n)
    return w


def integration_weights(energies: Any, e_fermi: float, kT: float, moment: int = 0,
                        method: str = "cubic") -> np.ndarray:
    """Weights ``w_i`` with ``∫ f(E; E_F, kT) E^moment D(E) dE ≈ Σ_i w_i D(E_i)``.

    ``moment=0`` gives the electron count, ``moment=1`` the band energy; the weights are linear in
    the DOS, so they can be applied to a batch of DOS or LDOS arrays (and differentiated through).

    Parameters
    ----------
    energies : array_like
        The uniform, ascending energy grid (eV).
    e_fermi : float
        Fermi level (eV).
    kT : float
        Electronic temperature (eV), ≥ 0.
    moment : {0, 1}
        Power of ``E`` in the integrand.
    method : {"cubic", "linear", "trapezoid"}
        ``"cubic"`` / ``"linear"``: D interpolated between grid points by cubic Lagrange pieces /
        straight lines (zero beyond the ends), integrated exactly against ``f`` (``"linear"`` is
        MALA's "analytical" rule). ``"trapezoid"``: the trapezoid rule on the samples
        ``f(E_i) E_i^moment D(E_i)``.

    Returns
    -------
    ndarray
        Weights in eV (``moment=0``) or eV² (``moment=1``), shape ``(len(energies),)``.
    """
    e, step = check_energy_grid(energies)
    kT = _check_kT(kT)
    method = _check_method(method)
    if moment not in (0, 1):
        raise InputError(f"moment must be 0 or 1, got {moment!r}", field="moment")
    e_fermi = float(e_fermi)
    if not math.isfinite(e_fermi):
        raise InputError(f"e_fermi must be finite, got {e_fermi!r}", field="e_fermi")
    if method != "trapezoid":
        return _interpolant_weights(e, step, e_fermi, kT, moment, 1 if method == "linear" else 3)
    w = fermi_dirac(e, e_fermi, kT) * step * (e if moment else 1.0)
    w[[0, -1]] *= 0.5
    return w


def _apply(values: Any, weights: np.ndarray) -> Any:
    """``values @ weights`` over the last axis, as a float for a 1-D numpy input."""
    if _is_torch(values):
        import torch

        return values @ torch.as_tensor(weights, dtype=values.dtype, device=values.device)
    out = values @ weights
    return float(out) if np.ndim(out) == 0 else out


def electron_count(dos_values: Any, energies: Any, e_fermi: float, kT: float, method: str = "cubic") -> Any:
    """Number of electrons ``N = ∫ f(E; E_F, kT) D(E) dE``.

    Parameters
    ----------
    dos_values : array_like or torch.Tensor
        DOS in states / eV, shape ``(..., n_energies)`` (a batch is allowed).
    energies : array_like
        The uniform energy grid (eV).
    e_fermi : float
        Fermi level (eV).
    kT : float
        Electronic temperature (eV), ≥ 0.
    method : {"cubic", "linear", "trapezoid"}
        Energy integration rule (:func:`integration_weights`).

    Returns
    -------
    float, ndarray or torch.Tensor
        Electrons: a float for a 1-D numpy DOS, else shaped like ``dos_values[..., 0]``.
    """
    e, _ = check_energy_grid(energies)
    d = _as_array(dos_values, "dos_values")
    _check_last_axis(d, e.size, "dos_values")
    return _apply(d, integration_weights(e, e_fermi, kT, 0, method))


def band_energy(dos_values: Any, energies: Any, e_fermi: float, kT: float, method: str = "cubic") -> Any:
    """Band energy ``E_b = ∫ f(E; E_F, kT) E D(E) dE`` (eV), on the energies' absolute scale.

    Parameters
    ----------
    dos_values : array_like or torch.Tensor
        DOS in states / eV, shape ``(..., n_energies)``.
    energies : array_like
        The uniform energy grid (eV).
    e_fermi : float
        Fermi level (eV).
    kT : float
        Electronic temperature (eV), ≥ 0.
    method : {"cubic", "linear", "trapezoid"}
        Energy integration rule (:func:`integration_weights`).

    Returns
    -------
    float, ndarray or torch.Tensor
        The band energy in eV (a float for a 1-D numpy DOS).
    """
    e, _ = check_energy_grid(energies)
    d = _as_array(dos_values, "dos_values")
    _check_last_axis(d, e.size, "dos_values")
    return _apply(d, integration_weights(e, e_fermi, kT, 1, method))


def fermi_level(dos_values: Any, energies: Any, n_electrons: float, kT: float, method: str = "cubic",
                tol: float = 1e-9) -> float:
    """The Fermi level at which the DOS holds ``n_electrons``: the root of ``N(E_F) − n_electrons``.

    Found by bisection between one grid spacing below the grid and one above it, where ``N`` is
    0 and the grid's full count; bisection needs only a sign change, so a predicted DOS that dips
    below zero somewhere is handled too (the root found is then one of possibly several).

    Parameters
    ----------
    dos_values : array_like or torch.Tensor
        DOS in states / eV, 1-D, on ``energies`` (a tensor is detached: the root is not differentiable).
    energies : array_like
        The uniform energy grid (eV).
    n_electrons : float
        Electron count to hold, > 0.
    kT : float
        Electronic temperature (eV), ≥ 0.
    method : {"cubic", "linear", "trapezoid"}
        Energy integration rule (:func:`integration_weights`).
    tol : float
        Width of the final bracket (eV).

    Returns
    -------
    float
        ``E_F`` in eV.

    Raises
    ------
    InputError
        When the grid cannot hold ``n_electrons`` (its top is too low or the DOS too small).
    """
    e, step = check_energy_grid(energies)
    n_electrons = check_positive(n_electrons, "n_electrons")
    tol = check_positive(tol, "tol")
    d = _as_array(dos_values, "dos_values")
    if _is_torch(d):
        d = d.detach().cpu().double().numpy()
    if d.ndim != 1:
        raise InputError(f"fermi_level needs one DOS (1-D), got shape {d.shape}", field="dos_values")
    _check_last_axis(d, e.size, "dos_values")

    def excess(mu: float) -> float:
        return float(d @ integration_weights(e, mu, kT, 0, method)) - n_electrons

    lo, hi = e[0] - step, e[-1] + step
    f_lo, f_hi = excess(lo), excess(hi)
    if f_lo > 0 or f_hi < 0:
        raise InputError(f"the DOS holds {f_lo + n_electrons:.6g} to {f_hi + n_electrons:.6g} electrons over the "
                         f"energy grid [{e[0]:.4g}, {e[-1]:.4g}] eV, so no Fermi level gives {n_electrons:.6g}: "
                         "extend the grid or check the DOS", field="n_electrons")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if excess(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def electron_density(ldos: Any, energies: Any, e_fermi: float, kT: float, method: str = "cubic") -> Any:
    """Electron density ``n(r) = ∫ f(E; E_F, kT) d(r, E) dE`` at every grid point.

    Parameters
    ----------
    ldos : array_like or torch.Tensor
        LDOS in states / (eV Å³), shape ``(..., n_energies)``.
    energies : array_like
        The uniform energy grid (eV).
    e_fermi : float
        Fermi level (eV).
    kT : float
        Electronic temperature (eV), ≥ 0.
    method : {"cubic", "linear", "trapezoid"}
        Energy integration rule (:func:`integration_weights`).

    Returns
    -------
    ndarray or torch.Tensor
        Electrons / Å³, shape ``ldos.shape[:-1]``.
    """
    e, _ = check_energy_grid(energies)
    d = _as_array(ldos, "ldos")
    _check_last_axis(d, e.size, "ldos")
    return _apply(d, integration_weights(e, e_fermi, kT, 0, method))


@dataclass
class LDOSObservables:
    """What an LDOS gives: ``dos`` (states / eV), ``e_fermi`` (eV, the level holding
    ``n_electrons``), ``n_electrons`` (the count integrated back at that level), ``band_energy``
    (eV) and ``density`` (electrons / Å³, the LDOS's spatial shape)."""

    dos: np.ndarray
    e_fermi: float
    n_electrons: float
    band_energy: float
    density: np.ndarray


def ldos_observables(ldos: Any, energies: Any, voxel_volume: float, n_electrons: float, kT: float,
                     method: str = "cubic", e_fermi: float | None = None) -> LDOSObservables:
    """DOS, Fermi level, electron count, band energy and density of one LDOS (numpy results).

    Parameters
    ----------
    ldos : array_like or torch.Tensor
        LDOS in states / (eV Å³), shape ``(..., n_energies)`` (spatial axes first).
    energies : array_like
        The uniform energy grid (eV).
    voxel_volume : float
        Volume of one grid cell (Å³).
    n_electrons : float
        Electrons the Fermi level must place (the valence count of the DFT run).
    kT : float
        Electronic temperature (eV), ≥ 0.
    method : {"cubic", "linear", "trapezoid"}
        Energy integration rule (:func:`integration_weights`).
    e_fermi : float, optional
        Use this Fermi level (eV) instead of solving for it (e.g. the DFT one, to compare counts).

    Returns
    -------
    LDOSObservables
    """
    d = _as_array(ldos, "ldos")
    if _is_torch(d):
        d = d.detach().cpu().double().numpy()
    e, _ = check_energy_grid(energies)
    _check_last_axis(d, e.size, "ldos")
    total = dos(d, voxel_volume)
    mu = fermi_level(total, e, n_electrons, kT, method) if e_fermi is None else float(e_fermi)
    w0 = integration_weights(e, mu, kT, 0, method)
    return LDOSObservables(dos=total, e_fermi=mu, n_electrons=float(total @ w0),
                           band_energy=float(total @ integration_weights(e, mu, kT, 1, method)), density=d @ w0)


@dataclass
class LDOSErrors:
    """How far a predicted LDOS's observables lie from a reference LDOS's (one snapshot).

    Attributes
    ----------
    band_energy : float
        Predicted − reference band energy, each at its own Fermi level (meV / atom).
    e_fermi : float
        Predicted − reference Fermi level (meV).
    density_mape : float
        Mean absolute percentage error of the density over the grid points (%), the density
        measure MALA reports, each density at its own Fermi level.
    density_max : float
        Largest absolute density error (electrons / Å³).
    electrons : float
        Electrons the predicted LDOS holds at the *reference's* Fermi level minus the reference's
        count there (a prediction integrated at the DFT E_F; at its own E_F the count is imposed).
    dos_error : float
        ``∫ |D_pred − D_ref| dE / ∫ D_ref dE`` over the energy grid (%): the integrated absolute DOS
        error relative to the reference's states on the grid.
    dos_occupied_error : float
        The same restricted to occupied states, weighted by the reference's Fermi function (%).
    ldos_rmse : float
        Root mean square of the LDOS residual over grid points and energies (states / (eV Å³)).
    n_atoms : int
        Atoms of the snapshot (the per-atom denominator).
    """

    band_energy: float
    e_fermi: float
    density_mape: float
    density_max: float
    electrons: float
    dos_error: float
    dos_occupied_error: float
    ldos_rmse: float
    n_atoms: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def ldos_errors(predicted: Any, reference: Any, energies: Any, voxel_volume: float, n_electrons: float, kT: float,
                n_atoms: int, method: str = "cubic") -> LDOSErrors:
    """The errors of a predicted LDOS's observables against a reference LDOS on the same grid.

    Both LDOS are integrated by :func:`ldos_observables` (each with its Fermi level fixed by the
    electron count at the electronic temperature), so the comparison is of what a user of the
    prediction gets against what the DFT LDOS itself gives (how the latter matches the DFT code's
    own numbers is a property of the data, :func:`mlexplore.dft.ldos_checks`).

    Parameters
    ----------
    predicted, reference : array_like
        LDOS in states / (eV Å³), same shape ``(..., n_energies)`` (spatial axes first, in the same
        order).
    energies : array_like
        The uniform energy grid (eV).
    voxel_volume : float
        Volume of one grid cell (Å³).
    n_electrons : float
        Valence electrons of the snapshot.
    kT : float
        Electronic temperature (eV).
    n_atoms : int
        Atoms in the snapshot (band energy per atom).
    method : {"cubic", "linear", "trapezoid"}
        Energy integration rule.

    Returns
    -------
    LDOSErrors
    """
    p, r = np.asarray(_as_array(predicted, "predicted")), np.asarray(_as_array(reference, "reference"))
    if p.shape != r.shape:
        raise InputError(f"predicted has shape {p.shape}, the reference {r.shape}", field="predicted")
    if int(n_atoms) < 1:
        raise InputError(f"n_atoms must be at least 1, got {n_atoms!r}", field="n_atoms")
    e, _ = check_energy_grid(energies)
    po = ldos_observables(p, e, voxel_volume, n_electrons, kT, method)
    ro = ldos_observables(r, e, voxel_volume, n_electrons, kT, method)
    dp, dr = np.asarray(po.density, np.float64), np.asarray(ro.density, np.float64)
    if np.any(np.abs(dr) == 0):
        raise InputError("the reference density is zero at some grid point: its percentage error is undefined",
                         field="reference")
    occupied = fermi_dirac(e, ro.e_fermi, kT)
    gap = np.abs(po.dos - ro.dos)
    sq = 0.0
    flat_p, flat_r = p.reshape(-1, e.size), r.reshape(-1, e.size)
    for a in range(0, flat_p.shape[0], 65536):  # float64 sums without a full-size copy
        sq += float(np.sum((flat_p[a:a + 65536].astype(np.float64) - flat_r[a:a + 65536]) ** 2))
    return LDOSErrors(band_energy=1000.0 * (po.band_energy - ro.band_energy) / int(n_atoms),
                      e_fermi=1000.0 * float(po.e_fermi - ro.e_fermi),
                      density_mape=100.0 * float(np.mean(np.abs(dp - dr) / np.abs(dr))),
                      density_max=float(np.max(np.abs(dp - dr))),
                      electrons=float((po.dos - ro.dos) @ integration_weights(e, ro.e_fermi, kT, 0, method)),
                      dos_error=100.0 * float(gap.sum() / ro.dos.sum()),
                      dos_occupied_error=100.0 * float((gap * occupied).sum() / (ro.dos * occupied).sum()),
                      ldos_rmse=math.sqrt(sq / flat_p.size), n_atoms=int(n_atoms))
