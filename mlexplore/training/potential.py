"""Using a trained model: :class:`Potential`, the one object that predicts, calculates for ASE,
saves and loads.

    from mlexplore.training import Potential

    pot = Potential.load("fe.pt")
    pot.predict(dataset)["forces"]          # batched: energy (n,), energies (N,), forces (N, 3), heads
    atoms.calc = pot.as_ase_calculator()    # energy, forces, stress, per-atom outputs
    pot.save("fe-copy.pt")

A :class:`~mlexplore.models.BPNN` potential gives energies (eV), forces (eV/Å), stress (eV/Å³) and
its per-atom outputs; a task model (:class:`~mlexplore.models.LatticeMLP`,
:class:`~mlexplore.models.GraphNet`) gives its tasks in physical units (``predict`` only).
:func:`~mlexplore.training.predict`, :func:`~mlexplore.training.predict_tasks` and the ASE
calculator are calls into this class.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ..data.dataset import StructureDataset
from ..data.validate import OVERLAP_HINT, check_limit, check_structures
from ..descriptors.verlet import DEFAULT_SKIN, VerletList
from ..errors import InputError
from ..models.bpnn import BPNN
from ..models.committee import Committee
from .checkpoint import load_model, save_model
from .engine import resolve_device
from .extrapolation import (ExtrapolationError, ExtrapolationLog, ExtrapolationWarning, check_policy,
                            describe_extrapolation)

__all__ = ["Potential", "MLExploreCalculator", "model_place", "ExtrapolationWarning", "ExtrapolationError"]


def model_place(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating-point precision of a model's parameters."""
    p = next(model.parameters())
    return p.device, p.dtype


class Potential:
    """A trained model ready to use.

    Parameters
    ----------
    model:
        The trained model (a :class:`~mlexplore.models.BPNN` or :class:`~mlexplore.models.Committee`
        potential, or a task model).
    device, dtype:
        Where and in which precision it runs; the model is moved there when it first predicts
        or calculates.
    min_distance:
        The structure check of :meth:`predict` and :meth:`calculate` (and so of the ASE
        calculator): non-finite positions or cells, a singular periodic cell and two atoms —
        periodic images included — closer than ``min_distance`` Å are an
        :class:`~mlexplore.errors.InputError` naming the structure and the atoms. None (default):
        half the sum of the two elements' covalent radii
        (:data:`~mlexplore.data.COVALENT_FRACTION`, ``ase.data.covalent_radii``); a distance in
        Å; 0: no overlap check (non-finite input is still refused). The overlaps are found from
        the neighbour list the descriptor needs anyway, so the check costs next to nothing.
    extrapolation:
        What :meth:`predict` and :meth:`calculate` do about atoms outside the training domain
        (:mod:`mlexplore.models.domain`: a feature outside its training range, n2p2's rule, or a
        novelty above ``novelty_limit``): ``"warn"`` (one summary :class:`ExtrapolationWarning` per
        call; in an ASE calculator, at the first such step, the rest counted in its
        :attr:`MLExploreCalculator.extrapolation` log), ``"raise"`` (:class:`ExtrapolationError`)
        or ``"ignore"``. The per-atom ``extrapolating``, ``extrapolation_grade`` and ``novelty``
        are in the results whatever the policy.
    novelty_limit:
        Novelty (1 = the most unusual training atom of the element) above which an atom inside
        every feature's range still counts as extrapolating.

    A :class:`~mlexplore.models.Committee` potential adds, per structure and per atom, the
    members' standard deviation of every output: ``energy_std``, ``energies_std``,
    ``forces_std (N, 3)`` and ``<output>_std``, scaled by its calibration factor.
    """

    def __init__(self, model: torch.nn.Module, device: Any = "cpu", dtype: torch.dtype | None = torch.float64,
                 min_distance: float | None = None, extrapolation: str = "warn", novelty_limit: float = 1.5) -> None:
        check_limit(min_distance)
        self.model = model
        self.device = resolve_device(device)
        self.dtype = dtype if dtype is not None else model_place(model)[1]
        self.min_distance = min_distance
        self.extrapolation = check_policy(extrapolation)
        if not (isinstance(novelty_limit, (int, float)) and novelty_limit > 0):
            raise InputError(f"novelty_limit must be a positive number, got {novelty_limit!r}", field="novelty_limit")
        self.novelty_limit = float(novelty_limit)

    def _ready(self) -> torch.nn.Module:
        """The model on :attr:`device` in :attr:`dtype`, in evaluation mode; moved only when it is
        not there already (an MD run calls :meth:`calculate` every step)."""
        model = self.model
        device, dtype = model_place(model)
        here = device.type == self.device.type and self.device.index in (None, device.index)
        if not here or dtype != self.dtype:
            model.to(device=self.device, dtype=self.dtype)
        if model.training:
            model.eval()
        return model

    def ready(self) -> torch.nn.Module:
        """The model on :attr:`device` in :attr:`dtype`, in evaluation mode (what every prediction
        runs; for drivers that call the model themselves, e.g. :mod:`mlexplore.simulation`)."""
        return self._ready()

    @property
    def is_potential(self) -> bool:
        """True for an interatomic potential (energies, forces), False for a task model."""
        return isinstance(self.model, (BPNN, Committee))

    @property
    def is_committee(self) -> bool:
        return isinstance(self.model, Committee)

    def grade(self, features: torch.Tensor, numbers: torch.Tensor, results: dict[str, Any] | None = None,
              policy: str | None = None, what: str = "", log: ExtrapolationLog | None = None,
              stacklevel: int = 4) -> Any:
        """Grade atoms against the model's training domain and act on ``policy`` (default:
        :attr:`extrapolation`): the one check behind :meth:`predict`, :meth:`calculate` and the
        drivers of :mod:`mlexplore.simulation`.

        ``features (N, F)``: the descriptor's raw values; ``numbers (N,)``; ``results``: a dict that
        gets the per-atom ``extrapolating``, ``extrapolation_grade`` and ``novelty``; ``what``: the
        start of the one-line message; ``log``: an :class:`ExtrapolationLog` of a run — the call is
        counted in it and only the run's first extrapolating call warns or raises; ``stacklevel``:
        of the warning, counted from this method. Returns the assessment (None for a model without
        a recorded domain)."""
        domain = self.model.domain
        if not domain.is_fitted:
            return None
        policy = self.extrapolation if policy is None else policy
        a = domain.assess(features, self.model.element_index(numbers), self.novelty_limit)
        if results is not None:
            results["extrapolating"], results["extrapolation_grade"], results["novelty"] = (
                a.extrapolating, a.grade, a.novelty)
        first = log is None or log.calls_extrapolating == 0
        if a.n_extrapolating and first and policy != "ignore":
            message = describe_extrapolation(a, numbers.cpu().numpy(), self.model.descriptor.feature_names,
                                             self.novelty_limit, what)
            if policy == "raise":
                raise ExtrapolationError(message)
            warnings.warn(message, ExtrapolationWarning, stacklevel=stacklevel)
        if log is not None:
            log.add(a)
        return a

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, path: str | os.PathLike, device: Any = "cpu") -> "Potential":
        """A potential from a file written by :meth:`save` (or ``save_model``); runs on ``device``
        in float64 (as ``Potential(model)`` does)."""
        return cls(load_model(path, map_location=device), device=device)

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """Write the model (descriptor, normalisation, weights and JSON-like ``extra``: settings,
        scores, history) atomically; read it back with :meth:`load`."""
        return save_model(self.model, path, extra=extra)

    # -------------------------------------------------------------- predicting
    def predict(self, dataset: StructureDataset, forces: bool = True, batch_size: int = 64,
                min_distance: float | None | str = "default", extrapolation: str | None = None) -> dict[str, np.ndarray]:
        """Predictions for every structure of ``dataset``, batched.

        Potentials: ``energy`` (n,) eV, ``energies`` (N,) eV, ``forces`` (N, 3) eV/Å (with
        ``forces``) and the model's per-atom outputs. Task models: each task, ``(n,)`` per structure
        or ``(N,)`` per site, in physical units (``forces`` and ``batch_size`` do not apply).

        The structures are checked first (see :class:`Potential`); ``min_distance`` (Å, None or 0)
        overrides :attr:`min_distance` for this call. Potentials also give, per atom,
        ``extrapolating``, ``extrapolation_grade`` and ``novelty`` against the training domain, and
        act on ``extrapolation`` (default: :attr:`extrapolation`) once for the whole call;
        committees give ``<name>_std`` for every output.
        """
        policy = self.extrapolation if extrapolation is None else check_policy(extrapolation)
        limit = self.min_distance if isinstance(min_distance, str) and min_distance == "default" else min_distance
        check_limit(limit)
        if not isinstance(dataset, StructureDataset):
            dataset = StructureDataset.coerce(dataset, "dataset")
        if len(dataset) == 0:
            raise InputError("nothing to predict: the dataset is empty")
        model = self._ready()
        if not self.is_potential:
            check_structures(dataset, limit, hint=OVERLAP_HINT)
            x = model.encode(dataset, device=self.device, dtype=self.dtype)
            with torch.no_grad():
                out = model(x)
            return {k: v.cpu().numpy().reshape(-1) for k, v in out.items()}
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}", field="batch_size")
        parts: dict[str, list[np.ndarray]] = {}
        check_structures(dataset, limit, overlaps=False)
        for start in range(0, len(dataset), batch_size):
            part = dataset[start:start + batch_size]
            batch = model.descriptor.prepare(part, device=self.device, dtype=self.dtype, check=False)
            batch["neighbors"] = model.descriptor.neighbor_list(batch, limit, first_structure=start)
            if forces:
                res = model.energy_and_forces(batch, return_features=True)
            else:
                with torch.no_grad():
                    res = model(batch, return_features=True)
            res.pop("energy_members", None), res.pop("forces_members", None)
            for k, v in res.items():
                parts.setdefault(k, []).append(v.detach().cpu().numpy())
        out = {k: np.concatenate(v) for k, v in parts.items()}
        features = out.pop("features")
        self.grade(torch.from_numpy(features), torch.as_tensor(dataset.numbers), out, policy,
                   what=f"predict on {len(dataset)} structure(s): ", stacklevel=3)  # points at predict's caller
        return out

    def calculate(self, atoms, min_distance: float | None | str = "default", extrapolation: str | None = None,
                  log: ExtrapolationLog | None = None, stress: bool = True,
                  neighbors: VerletList | None = None) -> dict[str, Any]:
        """Energy and free energy (eV), per-atom energies (eV), forces (eV/Å), stress (eV/Å³, Voigt
        order, for 3-D periodic cells, from the strain derivative ``(1/V) ∂E/∂ε``) and the per-atom
        outputs of one ``ase.Atoms``: what the ASE calculator returns.

        The structure is checked first (see :class:`Potential`; ``min_distance``, Å, None or 0,
        overrides :attr:`min_distance` for this call). The overlaps are looked for among the
        pairs of the descriptor's own neighbour list, which the model then uses: on a 108-atom
        periodic cell this adds ~0.1 ms to a call of a few ms.

        The atoms are graded against the training domain (``extrapolating``,
        ``extrapolation_grade``, ``novelty`` per atom; ``extrapolation`` as in :meth:`predict`) and,
        with ``log``, counted in it; a committee adds ``energy_std`` (eV), ``energies_std`` (eV),
        ``forces_std`` (eV/Å, per component) and ``<output>_std``.

        ``stress=False`` leaves the stress out (and its strain derivative: a few % of the step).
        ``neighbors``: a :class:`~mlexplore.descriptors.VerletList` kept between the calls of a
        trajectory (what the ASE calculator passes): the neighbour list and what depends on it are
        rebuilt only when an atom has moved more than half its skin — the same energies and forces
        as a new list at every step."""
        policy = self.extrapolation if extrapolation is None else check_policy(extrapolation)
        if not self.is_potential:
            raise InputError(f"a {type(self.model).__name__} is not an interatomic potential: it has no energies "
                             "or forces for an ASE calculator; use predict()", field="model")
        limit = self.min_distance if isinstance(min_distance, str) and min_distance == "default" else min_distance
        model = self._ready()
        ds = StructureDataset.from_atoms([atoms.copy()])
        check_structures(ds, limit, overlaps=False)
        batch = model.descriptor.prepare(ds, device=self.device, dtype=self.dtype, check=False)
        if neighbors is None:
            nb = model.descriptor.neighbor_list(batch, limit)
        else:
            nb = neighbors.neighbors(model.descriptor, batch, limit)
        pos = batch["positions"].detach().requires_grad_(True)
        periodic = bool(stress and atoms.pbc.all() and atoms.cell.rank == 3)
        if periodic:
            strain = torch.zeros((3, 3), dtype=self.dtype, device=self.device, requires_grad=True)
            deform = torch.eye(3, dtype=self.dtype, device=self.device) + (strain + strain.T) / 2
            # the list found for the undeformed cell serves the deformed one (ε = 0; integer shifts)
            batch = {**batch, "positions": pos @ deform, "cells": batch["cells"] @ deform, "neighbors": nb}
        else:
            batch = {**batch, "positions": pos, "neighbors": nb}
        if self.is_committee:
            out = model.energy_and_forces(batch, return_features=True)  # every member's forces
            energy = out["energy"].sum()
            grads = (-out["forces"],) + ((torch.autograd.grad(energy, strain)[0],) if periodic else ())
        else:
            out = model(batch, return_features=True)
            energy = out["energy"].sum()
            grads = torch.autograd.grad(energy, [pos, strain] if periodic else [pos])
        results: dict[str, Any] = {"energy": float(energy.detach()), "free_energy": float(energy.detach()),
                                   "energies": out["energies"].detach().cpu().numpy(),
                                   "forces": -grads[0].detach().cpu().numpy()}
        if periodic:
            sigma = grads[1].detach().cpu().numpy() / atoms.get_volume()
            results["stress"] = sigma.flat[[0, 4, 8, 5, 2, 1]]
        for name in model.atom_outputs:
            results[name] = out[name].detach().cpu().numpy()
        if self.is_committee:
            results["energy_std"] = float(out["energy_std"].detach().sum())
            for name in ("energies", "forces", *model.atom_outputs):
                results[f"{name}_std"] = out[f"{name}_std"].detach().cpu().numpy()
        self.grade(out["features"].detach(), batch["numbers"], results, policy,
                   what="" if log is None else f"calculation {log.calls + 1}: ", log=log)
        return results

    def as_ase_calculator(self, min_distance: float | None | str = "default",
                          skin: float = DEFAULT_SKIN) -> "MLExploreCalculator":
        """An ASE calculator over this potential (:class:`MLExploreCalculator`); ``min_distance`` (Å,
        None or 0) overrides :attr:`min_distance` for it; ``skin`` (Å): the neighbour list is kept
        between steps until an atom has moved more than half of it (0: a new list every step)."""
        return MLExploreCalculator(self, min_distance=min_distance, skin=skin)


class MLExploreCalculator(Calculator):
    """ASE calculator for a :class:`Potential` (or a :class:`~mlexplore.models.BPNN`, wrapped in one
    with ``device`` and ``dtype``).

    Properties: ``energy``, ``free_energy`` (eV), ``energies`` (per atom, eV),
    ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt, for 3-D periodic cells; from
    the strain derivative ``(1/V) ∂E/∂ε``) and the model's per-atom outputs
    (e.g. ``charges``, ``magmoms``): :meth:`Potential.calculate`.

    Every calculation checks the structure first (:meth:`Potential.calculate`): an MD run that
    drives two atoms on top of each other stops with an :class:`~mlexplore.errors.InputError`
    naming them. ``min_distance``: the overlap limit in Å, None for half the sum of the covalent
    radii, 0 for no overlap check; by default the potential's :attr:`Potential.min_distance`.

    Made for MD: the neighbour list is kept between steps with a ``skin`` (Å;
    :class:`~mlexplore.descriptors.VerletList`, rebuilt once an atom has moved more than half of
    it, or when the cell, the atoms or their elements change; 0: a new list every step), with the
    angular layout that depends on it; the stress is computed only when it is asked for (NPT, cell
    relaxations). ``calc.neighbors`` says how many lists were built for how many steps.
    """

    def __init__(self, potential: Potential | BPNN | Committee, device: Any = "cpu", dtype: torch.dtype = torch.float64,
                 min_distance: float | None | str = "default", skin: float = DEFAULT_SKIN, **kwargs) -> None:
        self.potential = potential if isinstance(potential, Potential) else Potential(potential, device, dtype)
        self.min_distance = (self.potential.min_distance if isinstance(min_distance, str) and min_distance == "default"
                             else min_distance)
        check_limit(self.min_distance)
        if not self.potential.is_potential:
            raise InputError(f"a {type(self.potential.model).__name__} is not an interatomic potential",
                             field="model")
        self.model = self.potential._ready()
        self.device, self.dtype = self.potential.device, self.potential.dtype
        self.implemented_properties = ["energy", "free_energy", "energies", "forces", "stress",
                                       *self.model.atom_outputs]
        if self.potential.is_committee:
            self.implemented_properties += ["energy_std", "energies_std", "forces_std",
                                            *(f"{n}_std" for n in self.model.atom_outputs)]
        #: counts of the calculations with atoms outside the training domain (an MD run's record)
        self.extrapolation = ExtrapolationLog()
        #: the neighbour list kept between steps
        self.neighbors = VerletList(skin)
        super().__init__(**kwargs)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        self.results.update(self.potential.calculate(self.atoms, min_distance=self.min_distance,
                                                     log=self.extrapolation, stress="stress" in properties,
                                                     neighbors=self.neighbors))

    def extrapolation_summary(self) -> str:
        """What the calculations so far saw of the training domain (print it at the end of an MD run)."""
        return self.extrapolation.summary(self.model.descriptor.feature_names)
