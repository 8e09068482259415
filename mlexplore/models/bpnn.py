"""Behler-Parrinello / HDNNP potential (002 §2.2, 2.4; 004 §1.3.2).

``E = Σ_i E_i`` with ``E_i = MLP_{element(i)}(scaled G_i)`` — one atomic network
per element, or (``shared=True``) the thesis' single "multi-task network" with
one output per element (002 §3.2.1). Forces are ``−∂E/∂R`` by autograd through
the descriptor. Optional per-atom heads (charges, moments) share the hidden
layers of the atomic network.

The model carries its own normalisation as buffers (feature shift/scale,
per-element reference energies, energy scale), set by
:func:`mlexplore.training.fit`, so a saved model predicts the same numbers
after loading.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase.data import atomic_numbers
from torch import nn

from ..descriptors.derivatives import forces_from_derivatives
from ..descriptors.symmetry import SymmetryFunctions
from ..errors import InputError
from .domain import FeatureDomain

__all__ = ["BPNN", "AtomicNet", "ACTIVATIONS", "mlp"]

ACTIVATIONS = {"tanh": nn.Tanh, "softplus": nn.Softplus, "relu": nn.ReLU, "silu": nn.SiLU}


def mlp(n_in: int, hidden: Sequence[int], n_out: int, activation: str) -> nn.Sequential:
    """Dense network ``n_in → hidden… → n_out`` with ``activation`` between layers."""
    if activation not in ACTIVATIONS:
        raise InputError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}",
                         field="activation")
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        if h < 1:
            raise InputError(f"hidden layer widths must be ≥ 1, got {list(hidden)}", field="hidden")
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class AtomicNet(nn.Module):
    """Dense atomic network, optionally with the class-wise blocks of 002 §3.2.3.

    With ``families`` (one of ``"radial"``, ``"angular"``, ``"spin"`` per input
    column), each class gets its own square dense layer (``n_c → n_c``, the
    "convolution by basis class"); their outputs are concatenated with *all*
    inputs and fed to the fully connected layers.
    """

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, activation: str,
                 families: Sequence[str] | None = None) -> None:
        super().__init__()
        self.groups: list[list[int]] = []
        self.blocks = nn.ModuleList()
        if families is not None:
            for fam in dict.fromkeys(families):
                cols = [k for k, f in enumerate(families) if f == fam]
                self.groups.append(cols)
                self.blocks.append(nn.Sequential(nn.Linear(len(cols), len(cols)), ACTIVATIONS[activation]()))
        self.main = mlp(n_in + sum(len(g) for g in self.groups), hidden, n_out, activation)
        for k, cols in enumerate(self.groups):
            self.register_buffer(f"_cols{k}", torch.tensor(cols, dtype=torch.long), persistent=False)

    @property
    def first_layer(self) -> nn.Linear:
        return self.main[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups:
            x = torch.cat([x] + [blk(x[:, getattr(self, f"_cols{k}")]) for k, blk in enumerate(self.blocks)], dim=1)
        return self.main(x)


class BPNN(nn.Module):
    """Atomic neural-network potential on symmetry-function descriptors.

    Parameters
    ----------
    descriptor:
        The :class:`SymmetryFunctions` (its elements define the networks).
    hidden:
        Hidden layer widths (thesis default 2 × 25; n2p2 default 2 × 25 tanh).
    activation:
        ``"tanh"``, ``"softplus"``, ``"relu"`` or ``"silu"`` (forces need a
        smooth activation: ReLU gives discontinuous forces).
    shared:
        One network with an output per element instead of one network per
        element (002 §3.2.1).
    atom_outputs:
        Names of extra per-atom targets (e.g. ``("charges", "magmoms")``) predicted
        by extra outputs of the atomic networks.
    classwise:
        Add the class-wise dense blocks of 002 §3.2.3 (radial / angular / spin)
        in front of the fully connected layers.
    """

    def __init__(self, descriptor: SymmetryFunctions, hidden: Sequence[int] = (25, 25),
                 activation: str = "tanh", shared: bool = False, atom_outputs: Sequence[str] = (),
                 classwise: bool = False) -> None:
        super().__init__()
        if descriptor.elements is None:
            raise InputError("a BPNN needs an element-resolved descriptor (pass elements=[...])",
                             field="elements")
        self.descriptor = descriptor
        self.elements = list(descriptor.elements)
        self.hidden = [int(h) for h in hidden]
        self.activation = activation
        self.shared = bool(shared)
        self.atom_outputs = list(atom_outputs)
        self.classwise = bool(classwise)
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}",
                             field="activation")
        families = descriptor.feature_families if self.classwise else None
        n_f = descriptor.n_features
        n_out = 1 + len(self.atom_outputs)
        n_el = len(self.elements)
        if self.shared:
            self.net = AtomicNet(n_f, self.hidden, n_el * n_out, activation, families)
        else:
            self.nets = nn.ModuleList([AtomicNet(n_f, self.hidden, n_out, activation, families)
                                       for _ in self.elements])
        self.register_buffer("feature_shift", torch.zeros(n_f))
        self.register_buffer("feature_scale", torch.ones(n_f))
        self.register_buffer("reference_energy", torch.zeros(n_el))
        self.register_buffer("energy_scale", torch.ones(()))
        self.register_buffer("output_shift", torch.zeros(max(len(self.atom_outputs), 1)))
        self.register_buffer("output_scale", torch.ones(max(len(self.atom_outputs), 1)))
        #: the training domain of the features (range, mean, covariance per element), recorded by ``fit``
        self.domain = FeatureDomain(n_el, n_f)
        lookup = torch.full((119,), -1, dtype=torch.long)
        for k, e in enumerate(self.elements):
            lookup[atomic_numbers[e]] = k
        self.register_buffer("_element_index", lookup, persistent=False)

    def config(self) -> dict:
        """Constructor arguments (besides the descriptor) as plain data."""
        return {"hidden": self.hidden, "activation": self.activation, "shared": self.shared,
                "atom_outputs": self.atom_outputs, "classwise": self.classwise}

    def init_from_pca(self, features: torch.Tensor, n_components: int) -> np.ndarray:
        """Set the first ``n_components`` neurons of every first hidden layer to the principal components
        of the (scaled) training features (002 §3.2.2); the other neurons keep their random weights —
        the thesis recommends exactly that. Returns the explained-variance ratios used."""
        from sklearn.decomposition import PCA

        x = ((features - self.feature_shift) / self.feature_scale).detach().cpu().numpy()
        n = min(n_components, x.shape[1], x.shape[0], self.hidden[0] if self.hidden else 0)
        if n < 1:
            raise InputError("n_components must be ≥ 1 and the network needs a hidden layer", field="n_components")
        pca = PCA(n_components=n).fit(x)
        comps = torch.as_tensor(pca.components_, dtype=self.feature_shift.dtype)
        nets = [self.net] if self.shared else list(self.nets)
        with torch.no_grad():
            for net in nets:
                w = net.first_layer.weight
                w[:n].zero_()
                w[:n, : comps.shape[1]] = comps.to(w)
                net.first_layer.bias[:n] = -(torch.as_tensor(pca.mean_, dtype=w.dtype) @ comps.to(w).T)
        return pca.explained_variance_ratio_

    def atomic_outputs(self, features: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """Raw network outputs per atom, ``(N, 1 + n_atom_outputs)`` (normalised units)."""
        el = self._element_index[numbers]
        if (el < 0).any():
            raise InputError(f"element Z={int(numbers[el < 0][0])} is not one of the model's {self.elements}",
                             field="numbers")
        x = (features - self.feature_shift) / self.feature_scale
        n_out = 1 + len(self.atom_outputs)
        if self.shared:
            out = self.net(x).view(len(x), len(self.elements), n_out)
            return out[torch.arange(len(x), device=x.device), el]
        out = torch.zeros((len(x), n_out), dtype=x.dtype, device=x.device)
        for k, net in enumerate(self.nets):
            sel = torch.nonzero(el == k, as_tuple=True)[0]
            if len(sel):
                out = out.index_put((sel,), net(x[sel]))
        return out

    def element_index(self, numbers: torch.Tensor) -> torch.Tensor:
        """The model's index of each atom's element, ``(N,)`` (an element it does not know: InputError)."""
        el = self._element_index[numbers]
        if (el < 0).any():
            raise InputError(f"element Z={int(numbers[el < 0][0])} is not one of the model's {self.elements}",
                             field="numbers")
        return el

    def forward(self, batch: dict[str, torch.Tensor], return_features: bool = False) -> dict[str, torch.Tensor]:
        """``{"energy": (S,) eV, "energies": (N,) eV, <atom output>: (N,)}`` for a batch
        (the dict of :meth:`SymmetryFunctions.prepare`, optionally with ``neighbors``; with
        ``magmoms`` (μ_B) when the descriptor has spin terms). A batch that carries
        ``features`` (the descriptor's raw values, ``(N, n_features)``, computed once for
        energy-only training) skips the descriptor: no forces from such a batch."""
        numbers, n_atoms = batch["numbers"], batch["n_atoms"]
        g = batch.get("features")
        if g is None:
            g = self.descriptor(batch["positions"], numbers, batch["cells"], batch["pbc"], n_atoms,
                                magmoms=batch.get("magmoms"), neighbors=batch.get("neighbors"))
        raw = self.atomic_outputs(g, numbers)
        el = self._element_index[numbers]
        e_atom = raw[:, 0] * self.energy_scale + self.reference_energy[el]
        batch = torch.repeat_interleave(torch.arange(len(n_atoms), device=numbers.device), n_atoms)
        energy = torch.zeros(len(n_atoms), dtype=e_atom.dtype, device=e_atom.device).index_add(0, batch, e_atom)
        out = {"energy": energy, "energies": e_atom}
        for k, name in enumerate(self.atom_outputs):
            out[name] = raw[:, 1 + k] * self.output_scale[k] + self.output_shift[k]
        if return_features:
            out["features"] = g
        return out

    def energy_and_forces(self, batch: dict[str, torch.Tensor], create_graph: bool = False,
                          return_features: bool = False) -> dict[str, torch.Tensor]:
        """Forward plus ``forces = −∂E/∂R`` (eV/Å) by autograd; ``create_graph`` for force training.

        A batch with stored ``features`` and ``feature_derivatives`` (``(P, F, 3)``, with its
        ``neighbors``; :class:`~mlexplore.training.fit.PreparedSet`) gets its forces from them
        (:func:`~mlexplore.descriptors.derivatives.forces_from_derivatives`): the same values
        without a pass through the descriptor."""
        if not torch.is_grad_enabled():
            raise InputError("forces are −∂E/∂R by autograd, which is switched off here (torch.no_grad or "
                             "inference_mode); call energy_and_forces outside it", field="forces")
        if "feature_derivatives" in batch:  # stored ∂G/∂r per pair: forces without the descriptor's graph
            g = batch["features"].detach().requires_grad_(True)
            out = self({**batch, "features": g})
            grad = torch.autograd.grad(out["energy"].sum(), g, create_graph=create_graph)[0]
            out["forces"] = forces_from_derivatives(grad, batch["feature_derivatives"], batch["neighbors"], len(g))
            if return_features:
                out["features"] = g.detach()
            return out
        if "features" in batch:
            raise InputError("forces need the descriptor's gradient: this batch carries precomputed features "
                             "without their derivatives", field="features")
        positions = batch["positions"]
        if not positions.requires_grad:
            positions = positions.detach().requires_grad_(True)
        out = self({**batch, "positions": positions}, return_features=return_features)  # type: ignore[arg-type]
        if not out["energy"].requires_grad:
            raise InputError("the energy does not depend on the positions through autograd, so there are no "
                             "forces (were the features computed without a gradient path?)", field="forces")
        grad = torch.autograd.grad(out["energy"].sum(), positions, create_graph=create_graph)[0]
        if return_features:
            out["features"] = out["features"].detach()
        out["forces"] = -grad
        return out
