"""The one training loop (mlexplore.training.engine): an objective of one's own trains with it, the loss
definition, non-finite losses named, early stopping and best weights, Ctrl-C, vectorised members,
options refused before any work, and the entry points' defaults taken from the one table."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from mlexplore import InputError
from mlexplore.training import DEFAULTS, Objective, Output, TrainingError, train_loop
from mlexplore.training.engine import output_loss, outputs_from, total_loss


class Line(Objective):
    """y = a·x + b by least squares: the smallest objective there is."""

    def __init__(self, n=64, noise=0.0, nan_at_epoch=None, batch=8):
        g = torch.Generator().manual_seed(0)
        self.x = torch.linspace(-1, 1, n, dtype=torch.float64)[:, None]
        self.y = 2.0 * self.x + 1.0 + noise * torch.randn(n, 1, generator=g, dtype=torch.float64)
        self.xv, self.yv = self.x[::3] + 0.01, 2.0 * (self.x[::3] + 0.01) + 1.0
        self.net = torch.nn.Linear(1, 1).double()
        self.nan_at_epoch, self.epoch, self._batch = nan_at_epoch, 0, batch
        self.best = None
        self.snapshots = []

    def parameters(self):
        return list(self.net.parameters())

    @property
    def n_train(self):
        return len(self.x)

    @property
    def batch_size(self):
        return self._batch

    def batch_loss(self, idx, sums):
        residual = self.net(self.x[idx]) - self.y[idx]
        if self.nan_at_epoch is not None and self.epoch >= self.nan_at_epoch:
            residual = residual * float("nan")
        loss, squared = output_loss(residual, "mse")
        sums["sse"] = sums.get("sse", 0.0) + squared.detach().sum()
        return loss, {"y": loss}

    def train_scores(self, sums):
        self.epoch += 1
        return np.array([float(sums["sse"]) / len(self.x)]), {"y_mse": np.array([float(sums["sse"]) / len(self.x)])}

    def validation_scores(self):
        with torch.no_grad():
            v = float(((self.net(self.xv) - self.yv) ** 2).mean())
        self.snapshots.append([p.detach().clone() for p in self.net.parameters()])
        return np.array([v]), {"y_mse": np.array([v])}

    def remember_best(self, member):
        self.best = [p.detach().clone() for p in self.net.parameters()]

    def restore_best(self):
        with torch.no_grad():
            for p, b in zip(self.net.parameters(), self.best):
                p.copy_(b)


def test_an_objective_of_ones_own_trains_with_the_loop():
    torch.manual_seed(0)
    obj = Line()
    (h,) = train_loop(obj, epochs=300, lr=5e-2, patience=None)
    w, b = (float(p.detach()) for p in obj.net.parameters())
    assert w == pytest.approx(2.0, abs=1e-3) and b == pytest.approx(1.0, abs=1e-3)
    assert len(h.epoch) == 300 and h.metrics["train_y_mse"][-1] < 1e-6
    assert set(h.metrics) == {"train_y_mse", "val_y_mse"}
    assert h.best_val_loss == min(h.val_loss) and h.val_loss[h.best_epoch] == h.best_val_loss


def test_best_weights_are_restored_and_early_stopping_counts_from_the_best():
    torch.manual_seed(0)
    obj = Line(noise=0.3)
    (h,) = train_loop(obj, epochs=400, lr=0.2, patience=5)
    assert h.stopped_early and len(h.epoch) == h.best_epoch + 6
    best = obj.snapshots[h.best_epoch]
    for p, q in zip(obj.net.parameters(), best):
        assert torch.equal(p.detach(), q)


def test_a_callback_stops_and_ctrl_c_keeps_the_best():
    torch.manual_seed(0)
    obj = Line(noise=0.3)
    (h,) = train_loop(obj, epochs=100, lr=0.1, callbacks=lambda epoch, history: epoch < 3)
    assert len(h.epoch) == 4 and not h.interrupted

    def interrupt(epoch, history):
        if epoch == 6:
            raise KeyboardInterrupt

    torch.manual_seed(0)
    obj = Line(noise=0.3)
    (h,) = train_loop(obj, epochs=100, lr=0.1, callbacks=interrupt)
    assert h.interrupted and len(h.epoch) == 7
    for p, q in zip(obj.net.parameters(), obj.snapshots[h.best_epoch]):
        assert torch.equal(p.detach(), q)


def test_a_non_finite_loss_is_named_by_epoch_batch_and_target():
    torch.manual_seed(0)
    with pytest.raises(TrainingError, match=r"at epoch 2, batch 0 \(target y\)"):
        train_loop(Line(nan_at_epoch=2), epochs=10, lr=1e-2)


def test_same_seeds_same_batches_and_a_different_seed_differs():
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(0)
        runs.append(train_loop(Line(noise=0.2), epochs=5, lr=0.05, seeds=[seed])[0].train_loss)
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_the_plateau_schedule_halves_the_rate():
    torch.manual_seed(0)
    (h,) = train_loop(Line(noise=0.5), epochs=60, lr=0.5, lr_patience=1)
    assert h.lr[0] == 0.5 and min(h.lr) < 0.5 and all(a >= b for a, b in zip(h.lr, h.lr[1:]))


def test_the_loss_definition():
    r = torch.tensor([3.0, -4.0])
    assert float(output_loss(r, "mse")[0]) == pytest.approx(12.5)
    assert float(output_loss(r, "rmse")[0]) == pytest.approx(12.5 ** 0.5)
    parts = {"energy": torch.tensor(2.0), "forces": torch.tensor(3.0)}
    outs = outputs_from(["energy", "forces"], {"forces": 10.0}, "mse")
    assert float(total_loss(parts, outs)) == pytest.approx(32.0)
    with pytest.warns(FutureWarning, match="'charges' is not a target"):
        assert outputs_from(["energy"], {"charges": 1.0}, "mse") == [Output("energy", 1.0, "mse")]
    with pytest.raises(InputError, match="reduction"):
        Output("energy", reduction="mae")
    with pytest.raises(InputError, match="finite number"):
        Output("energy", weight=float("nan"))


def test_options_no_training_can_run_with_are_refused_by_name():
    from mlexplore.datasets import lattice_alloy
    from mlexplore.descriptors import G2, SymmetryFunctions
    from mlexplore.models import BPNN, LatticeMLP
    from mlexplore.training import fit, fit_tasks
    from mlexplore.training.toy import ToyProblem, fit_toy, toy_data

    data = lattice_alloy("CuAu", n_per_composition=1, progress=False)[:6]
    model = BPNN(SymmetryFunctions([G2(1.0, 2.5)], cutoff=4.0, elements=["Cu", "Au"]), hidden=(4,))
    for kwargs, name in (({"batch_size": 0}, "batch_size"), ({"lr": float("nan")}, "lr"), ({"lr": -1.0}, "lr"),
                         ({"epochs": 0}, "epochs")):
        with pytest.raises(InputError, match=name):
            fit(model, data, targets=["energy"], progress=False, device="cpu", **kwargs)
    with pytest.warns(FutureWarning, match="'forces' is not a target"):
        fit(model, data, targets=["energy"], loss_weights={"forces": 2.0}, epochs=1, progress=False, device="cpu")
    lat = LatticeMLP(int(data.n_atoms[0]), data.elements, {"energy": "structure"})
    with pytest.raises(InputError, match="batch_fraction"):
        fit_tasks(lat, data, batch_fraction=0.0, device="cpu")
    with pytest.raises(InputError, match="lr"):
        fit_toy(toy_data(ToyProblem()), lr=0.0)


def test_vectorised_members_have_their_own_orders_histories_and_stopping():
    from mlexplore.data import stratified_split
    from mlexplore.datasets import ising_lattice
    from mlexplore.models import LatticeMLP
    from mlexplore.training import fit_task_members, fit_tasks

    ising = ising_lattice(L=3, n_per_composition=6, progress=False)
    splits = [stratified_split(ising, (0.7, 0.15, 0.15), seed=s) for s in range(2)]
    tasks = {"energy": "structure", "spin": "site"}

    def nets():
        out = []
        for k in range(2):
            torch.manual_seed(10 + k)
            out.append(LatticeMLP(27, ising.elements, tasks))
        return out

    stops = [lambda e, h: e < 2, None]  # member 0 stopped by its callback after epoch 2
    together = fit_task_members(nets(), [s[0] for s in splits], [s[1] for s in splits], seeds=[0, 1], epochs=6,
                                lr=1e-3, patience=None, device="cpu", callbacks=stops)
    assert [len(h.epoch) for h in together] == [3, 6]
    alone = []
    for k, net in enumerate(nets()):
        alone.append(fit_tasks(net, splits[k][0], splits[k][1], epochs=6, lr=1e-3, patience=None, seed=k,
                               device="cpu", callback=stops[k]))
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.val_loss, b.val_loss, rtol=1e-5)
        assert set(a.metrics) == set(b.metrics)


def test_member_plateau_halves_each_members_own_rate_and_scales_its_step_exactly():
    from mlexplore.training.engine import MemberPlateau

    plateau = MemberPlateau(2, patience=1)
    for losses in ([1.0, 1.0], [0.5, 1.0], [0.4, 1.0], [0.3, 1.0]):  # member 1 stops improving
        plateau.update(np.array(losses), [True, True])
    assert plateau.factor.tolist() == [1.0, 0.5]
    # Adam's step at rate lr/2 is half its step at rate lr: the scaled shared step is member 1's own
    torch.manual_seed(0)
    start = torch.randn(2, 3, dtype=torch.float64)
    grads = [torch.randn(2, 3, dtype=torch.float64) for _ in range(4)]
    p = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([p], lr=0.1)
    for g in grads:
        p.grad = g.clone()
        plateau.step(opt)
    for k, rate in enumerate((0.1, 0.05)):
        q = start[k].clone().requires_grad_(True)
        alone = torch.optim.Adam([q], lr=rate)
        for g in grads:
            q.grad = g[k].clone()
            alone.step()
        torch.testing.assert_close(p.detach()[k], q.detach(), rtol=1e-12, atol=1e-12)


def test_every_entry_point_takes_its_defaults_from_the_one_table():
    from mlexplore.training import compare_bases, fit, fit_ensemble, fit_task_members, fit_tasks, train_potential
    from mlexplore.training.toy import fit_toy

    def default(func, name):
        return inspect.signature(func).parameters[name].default

    for func, protocol, names in (
            (fit, "potential", ("epochs", "lr", "batch_size", "patience", "dtype")),
            (train_potential, "potential", ("epochs", "lr", "batch_size", "patience")),
            (fit_tasks, "tasks", ("epochs", "lr", "batch_fraction", "patience", "dtype")),
            (fit_task_members, "tasks", ("epochs", "lr", "batch_fraction", "patience", "dtype")),
            (fit_ensemble, "tasks", ("lr", "batch_fraction", "dtype")),
            (compare_bases, "bases", ("epochs", "lr", "batch_size")),
            (fit_toy, "toy", ("epochs", "lr", "batch_size"))):
        for name in names:
            assert default(func, name) == getattr(DEFAULTS[protocol], name), (func.__name__, name)


def test_the_comparison_defaults_are_the_table_and_the_cli_takes_the_models_protocol(monkeypatch):
    from mlexplore import cli
    from mlexplore.datasets import ising_lattice
    from mlexplore.training import plan_task_comparison

    ising = ising_lattice(L=3, n_per_composition=4, progress=False)
    for model in ("lattice", "graph"):  # the library: 000's protocol for both (fingerprints unchanged)
        o = plan_task_comparison(ising, ["energy"], model=model).options
        tasks = DEFAULTS["tasks"]
        assert (o.lr, o.epochs, o.fractions, o.batch_fraction, o.patience) == (
            tasks.lr, tasks.epochs, tasks.fractions, tasks.batch_fraction, tasks.patience)
    seen = {}
    import functools

    def record(*a, **k):
        seen.update(k)
        raise SystemExit

    monkeypatch.setattr(cli, "compare_tasks", functools.wraps(cli.compare_tasks)(record))  # keeps its signature
    monkeypatch.setattr(cli, "read", lambda *a, **k: ising)
    for model, protocol in (("graph", "graph"), ("lattice", "tasks")):
        with pytest.raises(SystemExit):
            cli.main(["compare", "x.xyz", "--targets", "energy", "--model", model])
        assert seen["lr"] == DEFAULTS[protocol].lr
        assert tuple(seen["fractions"]) == DEFAULTS["graph"].fractions


def test_the_interfaces_say_what_a_subclass_must_give():
    from mlexplore.training import ExperimentPlan

    with pytest.raises(TypeError, match="batch_loss"):
        type("NoLoss", (Objective,), {"parameters": lambda self: [], "train_scores": lambda self, s: None})()

    class NoTables(ExperimentPlan):
        jobs = []

        def run(self, job, callback=None):
            return None

        def summarise(self, runs):
            return []

    with pytest.raises(TypeError, match="format_table"):
        NoTables()
    plan = type("Plain", (NoTables,), {"format_table": lambda self, r: "", "markdown": lambda self, r: ""})()
    assert plan.fingerprint() is None
    with pytest.raises(InputError, match="keeps no record file"):
        plan.to_record(None, 0, "")
