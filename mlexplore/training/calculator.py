"""A trained potential as an ASE calculator (energy, forces, stress, per-atom outputs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ..data.dataset import StructureDataset
from ..models.bpnn import BPNN

__all__ = ["Potential", "MLExploreCalculator"]


class MLExploreCalculator(Calculator):
    """ASE calculator for a :class:`~mlexplore.models.BPNN`.

    Properties: ``energy``, ``free_energy`` (eV), ``energies`` (per atom, eV),
    ``forces`` (eV/Å), ``stress`` (eV/Å³, Voigt, for 3-D periodic cells; from
    the strain derivative ``(1/V) ∂E/∂ε``) and the model's per-atom outputs
    (e.g. ``charges``, ``magmoms``).
    """

    def __init__(self, model: BPNN, device: Any = "cpu", dtype: torch.dtype = torch.float64, **kwargs) -> None:
        self.model = model.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = torch.device(device), dtype
        self.implemented_properties = ["energy", "free_energy", "energies", "forces", "stress",
                                       *model.atom_outputs]
        super().__init__(**kwargs)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        ds = StructureDataset.from_atoms([self.atoms.copy()])
        batch = self.model.descriptor.prepare(ds, device=self.device, dtype=self.dtype)
        pos = batch["positions"].detach().requires_grad_(True)
        periodic = bool(self.atoms.pbc.all() and self.atoms.cell.rank == 3)
        strain = torch.zeros((3, 3), dtype=self.dtype, device=self.device, requires_grad=periodic)
        deform = torch.eye(3, dtype=self.dtype, device=self.device) + (strain + strain.T) / 2
        batch = {**batch, "positions": pos @ deform, "cells": batch["cells"] @ deform}
        out = self.model(batch)
        energy = out["energy"].sum()
        inputs = [pos, strain] if periodic else [pos]
        grads = torch.autograd.grad(energy, inputs)
        self.results["energy"] = self.results["free_energy"] = float(energy.detach())
        self.results["energies"] = out["energies"].detach().cpu().numpy()
        self.results["forces"] = -grads[0].detach().cpu().numpy()
        if periodic:
            sigma = grads[1].detach().cpu().numpy() / self.atoms.get_volume()
            self.results["stress"] = sigma.flat[[0, 4, 8, 5, 2, 1]]
        for name in self.model.atom_outputs:
            self.results[name] = out[name].detach().cpu().numpy()


class Potential:
    """A trained model ready to use: ``Potential(model).as_ase_calculator()``."""

    def __init__(self, model: BPNN, device: Any = "cpu", dtype: torch.dtype = torch.float64) -> None:
        self.model, self.device, self.dtype = model, device, dtype

    @classmethod
    def load(cls, path, device: Any = "cpu") -> "Potential":
        from .checkpoint import load_model

        return cls(load_model(path, map_location=device), device=device)

    def as_ase_calculator(self) -> MLExploreCalculator:
        return MLExploreCalculator(self.model, device=self.device, dtype=self.dtype)

    def predict(self, dataset: StructureDataset, forces: bool = True) -> dict[str, np.ndarray]:
        from .fit import predict

        return predict(self.model, dataset, forces=forces, device=self.device, dtype=self.dtype)
