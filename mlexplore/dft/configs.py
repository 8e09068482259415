"""The configurations behind the shipped DFT datasets (deterministic for a seed).

``fept_configurations`` — FePt on a 16-site BCC cell (2×2×2 conventional
cubic) at a fixed lattice constant, every composition, sampled as in seed 000
§3.1 scaled down (all when ≤ N exist, else N at random), counting
symmetry-distinct structures: no two are images of each other under the
cell's 768 symmetry operations. Fixed volume as in seed 001 §3: the samples are
not relaxed, so they carry pressure, which is what the paper used.

``fe_spin_configurations`` — iron in 2-, 4- and 16-atom cells (BCC, some FCC),
strained and rattled, each geometry with several collinear initial moment
patterns (SPEC §7): ``FM``, ``AFM-B2`` (cube corner vs centre), ``AFM-layer``
(alternating (001) double layers), ``AFM-L10`` (FCC (001) layers), ``random``
(random ± signs). Initial magnitudes vary in 1.5–3.0 μ_B. The pattern is the
tag; the SCF decides the final moments.

``fe_noncollinear_configurations`` — BCC iron in 2- and 4-atom cells, strained and rattled as
above, each geometry with the thesis' non-collinear spin states (002 §3.3.3): perturbed FM at
σ = 0 (FM), 0.015, 0.05, 0.1, 0.2, PM, and the collinear AFM orders; the directions are held by
a penalty in the DFT run (``DFTSettings(direction_penalty=…)``), so the state is the tag and
the recorded moments are the ones reached.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk

from ..data.dataset import StructureDataset
from ..datasets.sampling import (canonical_keys, count_classes, distinct_occupations, lattice_permutations,
                                 sample_occupations)
from ..datasets.spin_sampling import PERTURBED_FM_SIGMAS, spin_directions
from ..errors import InputError
from .settings import DFTSettings

__all__ = ["fept_configurations", "fe_spin_configurations", "fe_noncollinear_configurations", "shipped_plan", "SHIPPED_SETTINGS",
           "FEPT_LATTICE_CONSTANT", "FE_BCC_A", "FE_FCC_A"]

#: Å; gives 13.2 Å³/atom, between BCC Fe (11.8) and FCC Pt (15.1).
FEPT_LATTICE_CONSTANT = 2.98
#: PBE lattice constants used as the centre of the strain range (Å).
FE_BCC_A = 2.83
FE_FCC_A = 3.45


def _interleave(groups: list[list[int]]) -> list[int]:
    """Round-robin over groups, so that any prefix of the order spans all of them."""
    order, k = [], 0
    while any(k < len(g) for g in groups):
        order.extend(g[k] for g in groups if k < len(g))
        k += 1
    return order


def fept_configurations(n_per_composition: int = 21, seed: int = 0) -> StructureDataset:
    """FePt, 16 BCC sites, fixed volume; initial moments Fe 3.0, Pt 0.5 μ_B (FM).

    Up to ``n_per_composition`` symmetry-distinct configurations per composition (all when
    fewer exist): with the default 21, 207 of the cell's 331 distinct ones (1, 1, 4, 6, 18,
    then 21 for 5–11 Pt, …), ordered round-robin over compositions; then the B2 order of
    Fe8Pt8 (tag ``ordered-B2``) unless the sample holds it already: 208.

    The first plan drew 14 occupations per composition without regard to symmetry: 212, but
    only 113 different structures (all 14 "Fe15Pt" are one structure). Its distinct
    occupations come first, in their order, so that the records computed for them are kept;
    further classes are drawn with ``seed + 1``.
    """
    template = bulk("Fe", "bcc", a=FEPT_LATTICE_CONSTANT, cubic=True).repeat((2, 2, 2))
    n = len(template)
    perms = lattice_permutations(template)
    first_plan = sample_occupations(n, 14, seed=seed)
    more = sample_occupations(n, n_per_composition, seed=seed + 1, permutations=perms)
    images, tags, where = [], [], []
    for (k, first), (_, extra) in zip(first_plan, more):
        both = np.concatenate([first, extra])
        occupations = both[distinct_occupations(both, perms)[:min(n_per_composition, count_classes(n, k, perms))]]
        where.append(list(range(len(images), len(images) + len(occupations))))
        for occ in occupations:
            atoms = template.copy()
            atoms.numbers = np.where(occ, 78, 26)
            atoms.set_initial_magnetic_moments(np.where(occ, 0.5, 3.0))
            images.append(atoms)
            tags.append(("bcc", "fixed-volume"))
    order = _interleave(where)
    images, tags = [images[i] for i in order], [tags[i] for i in order]
    # the B2 (CsCl) order, Pt on every cube centre: all 8 nearest neighbours unlike, the
    # equiatomic structure an ordering alloy should favour on this lattice; last, unless sampled
    b2 = np.isclose((template.positions / (FEPT_LATTICE_CONSTANT / 2)) % 2, 1).all(axis=1)
    sampled = canonical_keys(np.array([a.numbers == 78 for a in images]), perms)
    if canonical_keys(b2, perms)[0] not in set(sampled.tolist()):
        atoms = template.copy()
        atoms.numbers = np.where(b2, 78, 26)
        atoms.set_initial_magnetic_moments(np.where(b2, 0.5, 3.0))
        images.append(atoms)
        tags.append(("bcc", "fixed-volume", "ordered-B2"))
    return StructureDataset.from_atoms(images, tags=tags, name="FePt 16-site BCC (GPAW PBE)")


def _strained(atoms: Atoms, rng: np.random.Generator, volumetric: float, shear: float,
              rattle: float) -> tuple[Atoms, list[str]]:
    tags = []
    eps = np.eye(3) * rng.uniform(-volumetric, volumetric)
    if rng.random() < 0.5:
        off = rng.uniform(-shear, shear, (3, 3))
        eps += (off + off.T) / 2 * (1 - np.eye(3))
        tags.append("sheared")
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    tags.append("strained")
    if rattle > 0:
        sigma = rng.uniform(0.0, rattle)
        atoms.positions += rng.normal(0.0, sigma, atoms.positions.shape)
        tags.append("rattled")
    return atoms, tags


def _patterns(atoms: Atoms, a0: float, lattice: str, rng: np.random.Generator,
              n_random: int) -> dict[str, np.ndarray]:
    """Sign patterns (+1/−1 per atom) of the collinear orders that fit an unstrained cubic cell."""
    n = len(atoms)
    units = np.round(atoms.positions / a0 * 2) / 2  # coordinates in lattice constants: 0, 0.5, 1, …
    out = {"FM": np.ones(n)}
    if lattice == "bcc":
        corner = np.isclose(units % 1, 0).all(axis=1)
        out["AFM-B2"] = np.where(corner, 1.0, -1.0)
        if n >= 4:
            out["AFM-layer"] = np.where(np.floor(units[:, 2] + 1e-6) % 2 == 0, 1.0, -1.0)
    else:
        out["AFM-L10"] = np.where(np.isclose(units[:, 2] % 1, 0), 1.0, -1.0)
    for r in range(n_random):
        signs = rng.choice([-1.0, 1.0], size=n)
        if abs(signs.sum()) == n:  # all equal would be FM: flip one
            signs[0] *= -1
        out[f"random{r}"] = signs
    return out


def _spin_block(lattice: str, rep: tuple, count: int, n_random: int,
                rng: np.random.Generator) -> list[tuple[Atoms, tuple]]:
    """``count`` strained, rattled ``lattice`` cells repeated ``rep``, each with every moment
    pattern of :func:`_patterns` at one random magnitude (1.5–3.0 μ_B); with their tags."""
    block = []
    a0 = FE_BCC_A if lattice == "bcc" else FE_FCC_A
    for _ in range(count):
        base = bulk("Fe", lattice, a=a0, cubic=True).repeat(rep)
        patterns = _patterns(base, a0, lattice, rng, n_random)
        geometry, gtags = _strained(base, rng, volumetric=0.04, shear=0.03, rattle=0.08)
        magnitude = rng.uniform(1.5, 3.0)
        for name, signs in patterns.items():
            atoms = geometry.copy()
            atoms.set_initial_magnetic_moments(signs * magnitude)
            pattern = "random" if name.startswith("random") else name
            block.append((atoms, (lattice, f"Fe{len(atoms)}", pattern, *gtags)))
    return block


def fe_spin_configurations(seed: int = 0, n_bcc2: int = 120, n_bcc4: int = 30, n_fcc4: int = 15,
                           n_bcc16: int = 1, n_extra_bcc2: int = 15) -> StructureDataset:
    """Iron with collinear moment patterns; see the module docstring.

    Defaults give 120×2 (BCC, 2 atoms: FM, AFM-B2) + 30×4 (BCC 1×1×2: FM,
    AFM-B2, AFM-layer, random) + 15×3 (FCC 4 atoms: FM, AFM-L10, random) +
    1×5 (BCC 2×2×2, 16 atoms: FM, AFM-B2, AFM-layer, two random) = 410
    configurations, weighted towards the cheap cells (a 16-atom cell costs
    about 20 min, as much as ~30 two-atom ones);
    the small cells come first (interleaved), the 16-atom cells after them.
    Then ``n_extra_bcc2`` more 2-atom BCC geometries with FM and AFM-B2 seeds
    (30 configurations by default, 440 in all), drawn from their own seed
    (``seed + 1``) so that the first 410 stay exactly as they were: a margin
    for the 4-atom cells whose SCF never converges, so that at least 400
    configurations succeed.
    """
    rng = np.random.default_rng(seed)
    specs = [("bcc", (1, 1, 1), n_bcc2, 0), ("bcc", (1, 1, 2), n_bcc4, 1), ("fcc", (1, 1, 1), n_fcc4, 1),
             ("bcc", (2, 2, 2), n_bcc16, 2)]
    blocks = [_spin_block(lattice, rep, count, n_random, rng) for lattice, rep, count, n_random in specs]
    # the three small-cell blocks interleaved, then the 16-atom cells
    offsets = np.cumsum([0] + [len(b) for b in blocks[:3]])
    flat = [item for b in blocks[:3] for item in b]
    order = _interleave([list(range(offsets[i], offsets[i + 1])) for i in range(3)])
    merged = [flat[i] for i in order] + blocks[3]
    merged += _spin_block("bcc", (1, 1, 1), n_extra_bcc2, 0, np.random.default_rng(seed + 1))
    return StructureDataset.from_atoms([m[0] for m in merged], tags=[m[1] for m in merged],
                                       name="Fe collinear spins (GPAW PBE)")


def _noncollinear_block(rep: tuple, states: list[tuple[str, float]], count: int,
                        rng: np.random.Generator) -> list[list[tuple[Atoms, tuple]]]:
    """``count`` strained, rattled BCC cells repeated ``rep``, each with every state of ``states``
    (``(name, σ)``: ``"perturbed-FM"`` at σ, ``"PM"``, or a collinear pattern of :func:`_patterns`
    along z) at one random seed magnitude (1.8–2.6 μ_B); one list per geometry."""
    blocks = []
    for _ in range(count):
        base = bulk("Fe", "bcc", a=FE_BCC_A, cubic=True).repeat(rep)
        patterns = _patterns(base, FE_BCC_A, "bcc", rng, 0)
        geometry, gtags = _strained(base, rng, volumetric=0.04, shear=0.03, rattle=0.08)
        magnitude = rng.uniform(1.8, 2.6)
        n = len(geometry)
        block = []
        for name, sigma in states:
            if name in ("perturbed-FM", "PM"):
                u = spin_directions(name, n, rng, sigma)
            else:
                u = np.zeros((n, 3))
                u[:, 2] = patterns[name]
            atoms = geometry.copy()
            atoms.set_initial_magnetic_moments(None)  # ASE's bulk Fe carries scalar moments
            atoms.set_initial_magnetic_moments(magnitude * u)
            state = "FM" if name == "perturbed-FM" and sigma == 0 else name
            extra = (f"sigma{sigma:g}",) if state == "perturbed-FM" else ()
            block.append((atoms, ("bcc", f"Fe{n}", state, *extra, *gtags)))
        blocks.append(block)
    return blocks


def fe_noncollinear_configurations(seed: int = 0, n_bcc2: int = 45, n_bcc4: int = 15) -> StructureDataset:
    """BCC iron with non-collinear spin states (3-vector ``initial_magmoms``); see the module docstring.

    Each of ``n_bcc2`` 2-atom geometries carries 7 states: FM, perturbed FM at σ = 0.015, 0.05,
    0.1, 0.2, PM, AFM-B2. Each of ``n_bcc4`` 4-atom (1×1×2) geometries carries 6: perturbed FM
    at σ = 0.1 and 0.2, two PM draws, AFM-B2 and AFM-layer. Defaults: 315 + 90 = 405. Order: the
    2-atom geometries, then the 4-atom ones, each geometry's states together (the energy
    differences between spin states at one geometry are what a spin Monte Carlo uses). The draws
    do not depend on the order, so neither do the record keys.
    """
    rng = np.random.default_rng(seed)
    fe2 = _noncollinear_block((1, 1, 1), [("perturbed-FM", s) for s in (0.0, *PERTURBED_FM_SIGMAS)]
                              + [("PM", 0.0), ("AFM-B2", 0.0)], n_bcc2, rng)
    fe4 = _noncollinear_block((1, 1, 2), [("perturbed-FM", 0.1), ("perturbed-FM", 0.2), ("PM", 0.0), ("PM", 0.0),
                                          ("AFM-B2", 0.0), ("AFM-layer", 0.0)], n_bcc4, rng)
    # every 2-atom geometry first: non-collinear Fe4 SCFs are slow and often do not converge
    # (README), so `generate_dft.py fe_noncollinear --limit 315` computes the 2-atom cells alone
    merged = [item for block in fe2 + fe4 for item in block]
    return StructureDataset.from_atoms([m[0] for m in merged], tags=[m[1] for m in merged],
                                       name="Fe non-collinear spins (GPAW LDA, constrained directions)")


#: The settings of the shipped datasets (scripts/generate_dft.py). Changing them changes every
#: record key: the old records stay in the record file but are no longer matched.
SHIPPED_SETTINGS = {
    "fe_spin": DFTSettings(ecut=350.0, kpt_density=1.8, smearing=0.1, magmoms={"Fe": 2.5},
                           mixer={"kind": "dif", "beta": 0.05, "nmaxold": 5, "weight": 50.0}),
    "fept": DFTSettings(ecut=350.0, kpts=(2, 2, 2), smearing=0.1, magmoms={"Fe": 3.0, "Pt": 0.5}),
    # GPAW 26.7: self-consistent non-collinear spins take LDA only, no stress, no Hirshfeld.
    # k-point density 1.5 Å gives 4×4×4 on every strained Fe2 cell and 4×4×2 on Fe4 (measured
    # 62–83 s per Fe2 configuration on one core); 0.8 eV is GPAW's default direction penalty
    # (reached directions within ~0.06 rad of the seeds on Fe2, FACTS/README).
    "fe_noncollinear": DFTSettings(xc="LDA", ecut=300.0, kpt_density=1.5, smearing=0.1, magmoms={"Fe": 2.2},
                                   hirshfeld=False, maxiter=80, noncollinear=True, direction_penalty=0.8),
}


def shipped_plan(name: str) -> tuple[StructureDataset, DFTSettings, list[str]]:
    """The configurations, settings and record keys of a shipped set (``fe_spin``, ``fept`` or
    ``fe_noncollinear``)."""
    makers = {"fe_spin": fe_spin_configurations, "fept": fept_configurations,
              "fe_noncollinear": fe_noncollinear_configurations}
    if name not in makers:
        raise InputError(f"unknown DFT set {name!r}; choose from {', '.join(makers)}", field="name")
    configs, settings = makers[name](), SHIPPED_SETTINGS[name]
    return configs, settings, [settings.key(a) for a in configs.to_atoms()]
