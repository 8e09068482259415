"""Settings of a DFT labelling run (GPAW, plane waves, spin-polarised PBE)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from ..errors import InputError

__all__ = ["DFTSettings", "DEFAULT_MAGMOMS"]

#: Initial moments (μ_B) for atoms that carry no ``initial_magmoms`` of their own.
DEFAULT_MAGMOMS = {"Fe": 3.0, "Co": 2.0, "Ni": 1.0, "Mn": 3.0, "Cr": 2.0, "Pt": 0.5, "Pd": 0.5}


@dataclass(frozen=True)
class DFTSettings:
    """GPAW settings; saved with every record so each number can be traced to how it was made.

    Parameters
    ----------
    xc:
        Exchange-correlation functional (``"PBE"``).
    ecut:
        Plane-wave cutoff, eV.
    kpts:
        Explicit Monkhorst-Pack grid; when ``None`` the grid comes from
        ``kpt_density`` (k-points per Å⁻¹ along each reciprocal vector, ASE's
        ``kptdensity2monkhorstpack``) so that cells of different size get
        comparable sampling.
    kpt_density:
        Used when ``kpts`` is None.
    smearing:
        Fermi-Dirac width, eV.
    spinpol:
        Spin-polarised (collinear) calculation.
    magmoms:
        Initial moments per element (μ_B) for atoms without ``initial_magmoms``.
    hirshfeld:
        Compute Hirshfeld charges (adds 10–30 s per 16-atom cell).
    maxiter:
        Most SCF iterations before the configuration counts as failed.
    mixer:
        Density mixer, or None for GPAW's default. Magnetic systems with
        competing orders (AFM iron) converge far more reliably with a gentle
        mixer that mixes the magnetisation density separately:
        ``{"kind": "dif", "beta": 0.05, "nmaxold": 5, "weight": 50.0}``
        (GPAW's ``MixerDif``); ``"kind": "sum"`` gives ``MixerSum``.
    """

    xc: str = "PBE"
    ecut: float = 350.0
    kpts: tuple[int, int, int] | None = None
    kpt_density: float = 1.8
    smearing: float = 0.1
    spinpol: bool = True
    magmoms: dict = field(default_factory=lambda: dict(DEFAULT_MAGMOMS))
    hirshfeld: bool = True
    maxiter: int = 300
    mixer: dict | None = None

    def __post_init__(self) -> None:
        if self.ecut <= 0:
            raise InputError(f"ecut must be positive, got {self.ecut}", field="ecut")
        if self.kpts is not None and (len(self.kpts) != 3 or min(self.kpts) < 1):
            raise InputError(f"kpts must be three positive integers, got {self.kpts}", field="kpts")
        if self.kpts is None and self.kpt_density <= 0:
            raise InputError(f"kpt_density must be positive, got {self.kpt_density}", field="kpt_density")
        if self.mixer is not None and self.mixer.get("kind", "dif") not in ("dif", "sum", "plain"):
            raise InputError(f"mixer kind must be 'dif', 'sum' or 'plain', got {self.mixer.get('kind')!r}",
                             field="mixer")
        if self.smearing <= 0:
            raise InputError(f"smearing must be positive, got {self.smearing}", field="smearing")

    def to_dict(self) -> dict:
        """Plain, JSON-ready form."""
        d = dataclasses.asdict(self)
        d["kpts"] = None if self.kpts is None else list(self.kpts)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DFTSettings":
        d = dict(d)
        if d.get("kpts") is not None:
            d["kpts"] = tuple(d["kpts"])
        return cls(**d)

    def kpts_for(self, atoms: Atoms) -> tuple[int, int, int]:
        """The Monkhorst-Pack grid used for ``atoms``."""
        if self.kpts is not None:
            return tuple(int(k) for k in self.kpts)
        from ase.calculators.calculator import kptdensity2monkhorstpack

        grid = kptdensity2monkhorstpack(atoms, kptdensity=self.kpt_density, even=False)
        return tuple(int(k) if p else 1 for k, p in zip(grid, atoms.pbc))

    def initial_magmoms(self, atoms: Atoms) -> np.ndarray:
        """Initial collinear moments: the atoms' own, else the per-element defaults."""
        own = atoms.get_initial_magnetic_moments()
        if np.any(own):
            return np.asarray(own, dtype=float)
        return np.array([self.magmoms.get(s, 0.0) for s in atoms.get_chemical_symbols()])

    def key(self, atoms: Atoms) -> str:
        """Identity of a calculation: geometry, species, initial moments and settings."""
        payload = {
            "numbers": atoms.numbers.tolist(),
            "positions": np.round(atoms.positions, 10).tolist(),
            "cell": np.round(atoms.cell.array, 10).tolist(),
            "pbc": atoms.pbc.tolist(),
            "magmoms": np.round(self.initial_magmoms(atoms), 10).tolist(),
            "settings": self.to_dict(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
