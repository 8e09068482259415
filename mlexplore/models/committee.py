"""A committee of BP potentials: N members on one descriptor, whose spread says how far to trust them.

Members differ in their initial weights (and, when fitted by
:func:`mlexplore.training.fit_committee`, optionally in their bootstrap sample or validation split).
The committee predicts the members' mean and, per structure and per atom, their standard
deviation (ddof = 0) — of the energy, the per-atom energies, every force component and every
per-atom output — the query-by-committee estimate of the error (Seung, Opper & Sompolinsky 1992;
used for potentials by Artrith & Behler, *PRB* 85, 045439 (2012), and by Imbalzano et al.,
*J. Chem. Phys.* 154, 074102 (2021), whose calibrated committee is followed here: one factor
``std_scale`` fitted on a validation set, see :func:`mlexplore.training.calibrate_committee`).

The descriptor is evaluated once for all members; the member networks run on the same features,
and each member's forces come from a backward pass through that one shared graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..descriptors.symmetry import SymmetryFunctions
from ..errors import InputError
from .bpnn import BPNN
from .domain import FeatureDomain

__all__ = ["Committee"]


class Committee(nn.Module):
    """``n_members`` :class:`BPNN` on one shared descriptor.

    Parameters
    ----------
    descriptor:
        The :class:`SymmetryFunctions` all members use.
    n_members:
        Committee size (8 is a common choice; 1 gives zero spread).
    seed:
        Member ``k`` is initialised from ``torch.manual_seed(seed + k)`` (the global RNG is left
        as it was).
    member_kwargs:
        The members' :class:`BPNN` arguments (``hidden``, ``activation``, ``atom_outputs``, …).
    """

    def __init__(self, descriptor: SymmetryFunctions, n_members: int = 8, seed: int = 0, **member_kwargs: Any) -> None:
        super().__init__()
        if isinstance(n_members, bool) or int(n_members) != n_members or n_members < 1:
            raise InputError(f"n_members must be a whole number ≥ 1, got {n_members!r}", field="n_members")
        members = []
        for k in range(int(n_members)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed) + k)
                members.append(BPNN(descriptor, **member_kwargs))
        self.members = nn.ModuleList(members)
        self.descriptor = descriptor
        self.seed = int(seed)
        self.register_buffer("std_scale", torch.ones(()))

    @classmethod
    def from_members(cls, members: Sequence[BPNN]) -> "Committee":
        """A committee of already trained potentials (same descriptor settings, elements and outputs)."""
        members = list(members)
        if not members or not all(isinstance(m, BPNN) for m in members):
            raise InputError("a committee needs one or more BPNN members", field="members")
        first = members[0]
        for k, m in enumerate(members[1:], start=1):
            if m.config() != first.config() or m.elements != first.elements or \
                    m.descriptor.feature_names != first.descriptor.feature_names:
                raise InputError(f"member {k} differs from member 0 in its settings, elements or features",
                                 field="members")
        committee = cls(first.descriptor, n_members=1, **first.config())
        for m in members:
            m.descriptor = first.descriptor
        committee.members = nn.ModuleList(members)
        p = next(first.parameters())
        committee.std_scale = committee.std_scale.to(device=p.device, dtype=p.dtype)
        return committee

    # the attributes a BPNN potential has, for the code that uses one (Potential, fit, the checkpoint)
    @property
    def elements(self) -> list[str]:
        return self.members[0].elements

    @property
    def atom_outputs(self) -> list[str]:
        return self.members[0].atom_outputs

    @property
    def domain(self) -> FeatureDomain:
        """The training domain (recorded on member 0 by the fit; the members share the training set's
        features, or nearly, with bootstrap samples)."""
        return self.members[0].domain

    def element_index(self, numbers: torch.Tensor) -> torch.Tensor:
        return self.members[0].element_index(numbers)

    def __len__(self) -> int:
        return len(self.members)

    def config(self) -> dict:
        return {"n_members": len(self.members), "seed": self.seed, **self.members[0].config()}

    def member_outputs(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Every member's outputs stacked on a first axis of length K, and the features ``(N, F)``."""
        g = batch.get("features")
        if g is None:
            g = self.descriptor(batch["positions"], batch["numbers"], batch["cells"], batch["pbc"], batch["n_atoms"],
                                magmoms=batch.get("magmoms"), neighbors=batch.get("neighbors"))
        shared = {**batch, "features": g}
        outs = [m(shared) for m in self.members]  # K small networks on the same features
        return {k: torch.stack([o[k] for o in outs]) for k in outs[0]}, g

    def _summarise(self, stacked: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, v in stacked.items():
            out[name] = v.mean(dim=0)
            out[f"{name}_std"] = v.std(dim=0, correction=0) * self.std_scale
        out["energy_members"] = stacked["energy"]
        return out

    def forward(self, batch: dict[str, torch.Tensor], return_features: bool = False) -> dict[str, torch.Tensor]:
        """The mean of every output (``energy (S,)``, ``energies (N,)``, per-atom outputs), its
        calibrated standard deviation (``<name>_std``) and ``energy_members (K, S)``; eV."""
        stacked, g = self.member_outputs(batch)
        out = self._summarise(stacked)
        if return_features:
            out["features"] = g
        return out

    def energy_and_forces(self, batch: dict[str, torch.Tensor], create_graph: bool = False,
                          return_features: bool = False) -> dict[str, torch.Tensor]:
        """Forward plus ``forces`` (mean, eV/Å), ``forces_std (N, 3)`` (per component) and
        ``forces_members (K, N, 3)``: each member's −∂E_k/∂R (a backward pass each, one graph)."""
        if not torch.is_grad_enabled():
            raise InputError("forces are −∂E/∂R by autograd, which is switched off here (torch.no_grad or "
                             "inference_mode)", field="forces")
        positions = batch["positions"]
        if not positions.requires_grad:
            positions = positions.detach().requires_grad_(True)
        stacked, g = self.member_outputs({**batch, "positions": positions})
        totals = stacked["energy"].sum(dim=1)  # (K,)
        K = len(totals)
        # one backward pass per member through the one shared graph: on a 108-atom gold cell with 8
        # members this took 17 ms against 33 ms for a single vmapped pass (is_grads_batched)
        grads = torch.stack([torch.autograd.grad(totals[k], positions, retain_graph=True,
                                                 create_graph=create_graph)[0] for k in range(K)])
        stacked["forces"] = -grads
        out = self._summarise(stacked)
        out["forces_members"] = -grads
        if return_features:
            out["features"] = g.detach()
        return out
