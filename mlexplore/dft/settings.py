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
    noncollinear:
        Self-consistent non-collinear spins: per-atom moments are 3-vectors
        (``initial_magmoms`` of shape ``(N, 3)``; scalar seeds point along z).
        GPAW 26.7 accepts LDA only here (``xc="LDA"``), runs without symmetry,
        and has no Hirshfeld partitioning for it (``hirshfeld=False``).
    direction_penalty:
        eV. Keep each atom's moment along its seeded direction with GPAW's
        penalty ``λ(|m|² − (u·m)²)`` (``gpaw.new.constraints.SpinDirectionConstraint``,
        λ = this value; 0.8 is GPAW's default). Without it a non-collinear SCF relaxes
        canted seeds to the nearest collinear state (FACTS.md). The reported energy
        excludes the penalty term; the reached directions (a few 0.01 rad off the seed
        at 0.8 eV on Fe) are the recorded ``magmoms``. Non-collinear runs only.
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
    noncollinear: bool = False
    direction_penalty: float | None = None

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
        if self.noncollinear:
            if self.xc.upper() != "LDA":
                raise InputError(f"GPAW runs self-consistent non-collinear spins with LDA only, got "
                                 f"xc={self.xc!r}", field="xc")
            if self.hirshfeld:
                raise InputError("GPAW has no Hirshfeld charges for non-collinear runs: set hirshfeld=False",
                                 field="hirshfeld")
            if self.mixer is not None:
                raise InputError("non-collinear runs use GPAW's own mixer: set mixer=None", field="mixer")
            if not self.spinpol:
                raise InputError("a non-collinear run is spin-polarised: set spinpol=True", field="spinpol")
        if self.direction_penalty is not None:
            if not self.noncollinear:
                raise InputError("direction_penalty constrains non-collinear moments: set noncollinear=True",
                                 field="direction_penalty")
            if not self.direction_penalty > 0:
                raise InputError(f"direction_penalty must be positive (eV), got {self.direction_penalty}",
                                 field="direction_penalty")

    def to_dict(self) -> dict:
        """Plain, JSON-ready form."""
        d = dataclasses.asdict(self)
        d["kpts"] = None if self.kpts is None else list(self.kpts)
        # written only when used, so that the keys of every collinear record made before they
        # existed stay what they were
        for name in ("noncollinear", "direction_penalty"):
            if d[name] == _DEFAULTS[name]:
                del d[name]
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
        """Initial moments (μ_B): the atoms' own, else the per-element defaults.

        Collinear runs: shape ``(N,)``. Non-collinear runs: shape ``(N, 3)``, scalar seeds
        along +z. A collinear run given 3-vector seeds is an error (it would drop their
        directions)."""
        own = np.asarray(atoms.get_initial_magnetic_moments(), dtype=float)
        if not np.any(own):
            own = np.array([self.magmoms.get(s, 0.0) for s in atoms.get_chemical_symbols()])
        if not self.noncollinear:
            if own.ndim == 2:
                raise InputError("3-vector initial moments need a non-collinear run (noncollinear=True)",
                                 field="initial_magmoms")
            return own
        if own.ndim == 1:
            own = np.stack([np.zeros_like(own), np.zeros_like(own), own], axis=1)
        return own

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


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DFTSettings) if f.default is not dataclasses.MISSING}
