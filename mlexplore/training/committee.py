"""Fitting and calibrating a :class:`~mlexplore.models.Committee` of BP potentials.

- :func:`fit_committee` trains every member with :func:`~mlexplore.training.fit` (the one training
  loop), member ``k`` with seed ``seed + k`` — its own initial weights and mini-batch order — and,
  with ``resample="bootstrap"``, on its own bootstrap sample of the training set (drawn with
  replacement, as many structures as the set has). The committee's training domain is that of the
  whole training set (recorded by member 0's fit, or afterwards when the members saw bootstrap samples).
- :func:`calibrate_committee` fits the one factor ``s`` that makes the committee's spread match
  its error on a validation set, ``s² = ⟨error²⟩ / ⟨σ²⟩`` over the force components (or the
  energies per atom without forces), and stores it in the committee (``std_scale``); it reports
  the ratio before and after.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.dataset import StructureDataset, Structures
from ..data.splits import check_seed
from ..errors import InputError
from ..models.committee import Committee
from .engine import History
from .fit import fit

__all__ = ["fit_committee", "calibrate_committee", "RESAMPLING"]

RESAMPLING = ("none", "bootstrap")


def fit_committee(committee: Committee, train: Structures, val: Structures | None = None, resample: str = "none",
                  seed: int = 0, progress: bool = False, **fit_kwargs: Any) -> list[History]:
    """Train each member of ``committee`` (see the module's docstring); returns their histories.

    ``fit_kwargs`` go to :func:`~mlexplore.training.fit` for every member (``targets``, ``epochs``,
    ``lr``, ``batch_size``, ``device``, …; not ``seed``).
    """
    if not isinstance(committee, Committee):
        raise InputError(f"expected a Committee, got {type(committee).__name__}", field="committee")
    if resample not in RESAMPLING:
        raise InputError(f"resample must be one of {', '.join(RESAMPLING)}, got {resample!r}", field="resample")
    if "seed" in fit_kwargs:
        raise InputError("give the committee's seed as seed=; member k uses seed + k", field="seed")
    train = StructureDataset.coerce(train, "train")
    val = None if val is None else StructureDataset.coerce(val, "val")
    seed = check_seed(seed)
    histories = []
    for k, member in enumerate(committee.members):
        part = train
        if resample == "bootstrap":
            pick = np.random.default_rng(seed + k).integers(0, len(train), len(train))
            part = train.select(np.sort(pick))
        histories.append(fit(member, part, val, seed=seed + k, progress=progress, **fit_kwargs))
    if resample == "bootstrap":  # member 0 recorded the domain of its own sample: record the whole set's
        features = committee.descriptor.compute(train, device="cpu", dtype=torch.float64)
        committee.domain.fit(features, committee.element_index(torch.as_tensor(train.numbers)))
    return histories


def calibrate_committee(committee: Committee, val: Structures, forces: bool | None = None,
                        batch_size: int = 64) -> dict[str, float]:
    """Fit and store the committee's ``std_scale`` on ``val`` (see the module's docstring).

    ``forces``: calibrate on the force components (default: when ``val`` has forces), else on the
    energies per atom. Returns ``scale``, and for each quantity used the RMSE and the root mean
    committee variance before and after (``rmse``, ``std_before``, ``std_after``; eV/atom, eV/Å).
    """
    from .potential import Potential

    val = StructureDataset.coerce(val, "val")
    forces = ("forces" in val) if forces is None else bool(forces)
    if forces and "forces" not in val:
        raise InputError("the validation set has no forces to calibrate on", field="forces")
    if "energy" not in val:
        raise InputError("the validation set has no energies", field="val")
    committee.std_scale.fill_(1.0)
    pred = Potential(committee, device=next(committee.parameters()).device,
                     dtype=next(committee.parameters()).dtype, extrapolation="ignore").predict(
        val, forces=forces, batch_size=batch_size)
    n = val.n_atoms
    e_err = (pred["energy"] - val.label("energy")) / n
    e_std = pred["energy_std"] / n
    if forces:
        err, std = (pred["forces"] - val.label("forces")).ravel(), pred["forces_std"].ravel()
    else:
        err, std = e_err, e_std
    mean_var = float(np.mean(std ** 2))
    if mean_var <= 0:
        raise InputError("the committee's members agree exactly (zero spread): nothing to calibrate; train the "
                         "members from different seeds or samples", field="committee")
    scale = float(np.sqrt(np.mean(err ** 2) / mean_var))
    committee.std_scale.fill_(scale)
    report = {"scale": scale, "calibrated_on": "forces" if forces else "energy"}
    for name, e, s in (("energy", e_err, e_std),) + ((("forces", err, std),) if forces else ()):
        rmse, before = float(np.sqrt(np.mean(e ** 2))), float(np.sqrt(np.mean(s ** 2)))
        report.update({f"{name}_rmse": rmse, f"{name}_std_before": before, f"{name}_std_after": before * scale})
    return report
