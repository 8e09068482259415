"""One executor seam for the many-task jobs (issue 25): the STL/MTL comparison and DFT labelling run
in this process or on a Dask cluster (a LocalCluster of 2 one-thread worker processes here) with the
same results; a worker killed mid-run and a client restarted mid-run lose nothing and record
nothing twice; without Dask everything runs in this process and a Dask request says how to install it."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dft_stand_in import emt, fake

from mlexplore import InputError
from mlexplore.datasets import lattice_alloy
from mlexplore.dft import DFTSettings, label, read_records
from mlexplore.execution import InProcessExecutor, resolve_executor, worker_devices
from mlexplore.training.experiments import (TaskComparisonPlan, compare_tasks, plan_task_comparison,
                                            run_experiment)

TARGETS = ["mixing_energy", "energies"]
KW = dict(model="lattice", n_runs=2, epochs=3, lr=1e-3, width=16, stratify=False, device="cpu")
EMT_SETTINGS = DFTSettings(spinpol=False, hirshfeld=False, kpt_density=2.0)


@pytest.fixture(scope="module")
def cuau():
    return lattice_alloy("CuAu", n_per_composition=2, progress=False)


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 one-thread worker processes, shared by the Dask tests of this file."""
    pytest.importorskip("distributed")
    with resolve_executor("local", workers=2) as executor:
        assert executor.n_workers == 2
        yield executor


def _jobs_recorded(path: Path) -> list[int]:
    return sorted(json.loads(line)["job"] for line in path.read_text().splitlines())


def _same_runs(a, b) -> None:
    """The same trained models: test predictions and learning curves to the last bit."""
    assert len(a.runs) == len(b.runs) and a.jobs == b.jobs
    for x, y in zip(a.runs, b.runs):
        assert (x.run, x.tasks) == (y.run, y.tasks)
        for t in x.tasks:
            np.testing.assert_array_equal(x.predicted[t], y.predicted[t])
        assert x.history.as_dict()["train_loss"] == y.history.as_dict()["train_loss"]
    assert [r["rmse_mean"] for r in a] == [r["rmse_mean"] for r in b]


def _kill_once(marker: str) -> None:
    """Kill this process (a Dask worker) the first time: the marker file says it happened."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)


@dataclasses.dataclass
class KillingPlan(TaskComparisonPlan):
    """A comparison whose third job group kills its worker the first time it is trained."""

    marker: str = ""

    def run_group(self, group, together, callbacks=None):
        if group[0] == 2:
            _kill_once(self.marker)
        return super().run_group(group, together, callbacks)


def emt_counted(settings, atoms, kpts, txt, *, calls: str, kill_at: int | None = None, marker: str = ""):
    """:func:`dft_stand_in.emt`, appending a line to ``calls`` per configuration; with ``kill_at`` the
    configuration of that call number kills its worker the first time."""
    with open(calls, "a") as fh:
        fh.write("call\n")
    if kill_at is not None and len(Path(calls).read_text().splitlines()) >= kill_at:
        _kill_once(marker)
    return emt(settings, atoms, kpts, txt)


def _threads_seen() -> tuple[str | None, int]:
    return os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()


# ------------------------------------------------------------------------------ in this process
def test_in_process_executor_sets_the_threads_of_a_task_and_restores_them():
    before = (os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads())
    ex = InProcessExecutor()
    assert ex.in_process and list(ex.run(_threads_seen, [("a", ())], threads=2)) == [("a", ("2", 2))]
    assert (os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()) == before
    assert list(ex.run(_threads_seen, [("b", ())])) == [("b", before)]  # None: untouched
    with pytest.raises(InputError, match="threads must be a whole number"):
        list(ex.run(_threads_seen, [("c", ())], threads=0))
    with pytest.raises(InputError, match="two tasks have the key 'd'"):
        list(ex.run(_threads_seen, [("d", ()), ("d", ())]))
    # lazy: a caller that stops asking starts no further task
    started = []
    results = ex.run(started.append, ((k, (k,)) for k in range(5)))
    next(results)
    results.close()
    assert started == [0]


def test_resolve_executor_refuses_what_it_cannot_use():
    assert isinstance(resolve_executor(None), InProcessExecutor)
    ex = InProcessExecutor()
    assert resolve_executor(ex) is ex
    with pytest.raises(InputError, match="not a scheduler address") as err:
        resolve_executor("somewhere")
    assert err.value.field == "executor"
    with pytest.raises(InputError, match="not int"):
        resolve_executor(3)
    with pytest.raises(InputError, match="workers sizes a local cluster") as err:
        resolve_executor(None, workers=2)
    assert err.value.field == "workers"


def test_without_dask_everything_runs_here_and_a_dask_request_says_how_to_install(cuau, tmp_path, monkeypatch):
    for name in ("distributed", "dask"):
        monkeypatch.setitem(sys.modules, name, None)  # import distributed → ImportError
    for spec in ("local", "tcp://127.0.0.1:8786"):
        with pytest.raises(InputError, match=r'pip install "mlexplore\[cluster\]"') as err:
            resolve_executor(spec)
        assert err.value.field == "executor"
    with pytest.raises(InputError, match="dask.distributed, which is not installed"):
        worker_devices(["0"])
    result = compare_tasks(cuau, TARGETS, [("mixing_energy",)], progress=False, executor=None,
                           **{**KW, "n_runs": 1, "epochs": 1})
    assert len(result.runs) == 1
    out = tmp_path / "emt.jsonl"
    with pytest.raises(InputError, match="not installed"):
        label(cuau[:2], out, settings=EMT_SETTINGS, calculator=emt, progress=False, executor="local")
    assert not out.exists()  # refused before any record
    assert len(label(cuau[:2], out, settings=EMT_SETTINGS, calculator=emt, progress=False)) == 2


def test_worker_devices_plugin_gives_each_worker_its_device(monkeypatch):
    pytest.importorskip("distributed")
    from types import SimpleNamespace

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    plugin = worker_devices(["5", "7"])
    plugin.setup(SimpleNamespace(name="gpu-3"))  # dask worker --nworkers N --name gpu
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "7"
    plugin.teardown(None)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    with pytest.raises(InputError, match="ends in no number") as err:
        plugin.setup(SimpleNamespace(name="tcp://10.0.0.1:4000/x"))
    assert err.value.field == "devices"
    with pytest.raises(InputError, match="devices is empty"):
        worker_devices([])


# ------------------------------------------------------------------------------ on a Dask cluster
def test_threads_and_devices_reach_the_workers(cluster):
    assert sorted(cluster.run(_threads_seen, [(k, ()) for k in range(2)], threads=2)) == [(0, ("2", 2)), (1, ("2", 2))]
    assert {r for _, r in cluster.run(_threads_seen, [(k, ()) for k in range(2)])} == {("1", 1)}  # Dask's default
    address = cluster.client.scheduler.address
    with resolve_executor(address, devices=["5", "7"]) as ex:
        seen = ex.client.run(lambda dask_worker: (dask_worker.name, os.environ.get("CUDA_VISIBLE_DEVICES")))
        assert sorted(seen.values()) == [(0, "5"), (1, "7")]
    seen = cluster.client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    assert set(seen.values()) == {None}  # removed with the executor that registered it


def test_task_comparison_on_two_workers_is_the_serial_one(cuau, cluster, tmp_path):
    serial = compare_tasks(cuau, TARGETS, progress=False, **KW)
    record = tmp_path / "runs.jsonl"
    started, arrived = [], []
    plan = plan_task_comparison(cuau, TARGETS, **KW)
    result = run_experiment(plan, resume_file=record, progress=False, executor=cluster, on_start=started.append,
                            on_finished=lambda j, run, done: arrived.append(j))
    _same_runs(serial, result)
    assert sorted(started) == [[j] for j in range(6)] and sorted(arrived) == list(range(6))
    assert _jobs_recorded(record) == list(range(6))
    assert all(r.model is not None for r in result.runs)
    # vectorised groups are tasks too: one per combination, the same models to float rounding
    together = compare_tasks(cuau, TARGETS, progress=False, vectorise=True, executor=cluster, **KW)
    for a, b in zip(serial.runs, together.runs):
        for t in a.tasks:
            np.testing.assert_allclose(b.predicted[t], a.predicted[t], rtol=1e-4, atol=1e-6)
    # a rerun reads every model back from the records: nothing is submitted
    started.clear()
    again = run_experiment(plan, resume_file=record, progress=False, executor=cluster, on_start=started.append)
    assert started == [] and [r["rmse_mean"] for r in again] == [r["rmse_mean"] for r in serial]
    with pytest.raises(InputError, match="on_epoch cannot reach the workers") as err:
        run_experiment(plan, progress=False, executor=cluster, on_epoch=lambda j, e, h: None)
    assert err.value.field == "on_epoch"


def test_labelling_on_two_workers_is_the_serial_one(cuau, cluster, tmp_path):
    structures = cuau[:8]
    serial = label(structures, tmp_path / "serial.jsonl", settings=EMT_SETTINGS, calculator=emt, progress=False)
    out = tmp_path / "cluster.jsonl"
    seen = []
    ds = label(structures, out, settings=EMT_SETTINGS, calculator=emt, progress=False, executor=cluster,
               on_record=seen.append)
    np.testing.assert_array_equal(ds.label("energy"), serial.label("energy"))
    np.testing.assert_array_equal(ds.label("forces"), serial.label("forces"))
    np.testing.assert_array_equal(ds.label("stress"), serial.label("stress"))
    records = read_records(out)
    assert sorted(r["index"] for r in records) == list(range(8)) and len(seen) == 8
    with pytest.raises(InputError, match="reverse pairs two processes") as err:
        label(structures, out, settings=EMT_SETTINGS, calculator=emt, progress=False, executor=cluster, reverse=True)
    assert err.value.field == "reverse"


def test_a_killed_worker_loses_nothing_and_records_nothing_twice(cuau, cluster, tmp_path):
    # labelling: the scheduler itself runs the task of the dead worker again (allowed-failures)
    calls, marker = tmp_path / "calls.txt", tmp_path / "killed-label"
    structures = cuau[:8]
    out = tmp_path / "emt.jsonl"
    factory = functools.partial(emt_counted, calls=str(calls), kill_at=4, marker=str(marker))
    ds = label(structures, out, settings=EMT_SETTINGS, calculator=factory, progress=False, executor=cluster)
    assert marker.exists() and len(ds) == 8  # a worker did die
    keys = [r["key"] for r in read_records(out)]
    assert len(keys) == 8 and len(set(keys)) == 8
    cluster.client.wait_for_workers(2, timeout=120)  # the nanny starts a new one
    # training: the scheduler gives up at once (allowed-failures 0), the executor submits it again
    scheduler = cluster.client.cluster.scheduler
    allowed, scheduler.allowed_failures = scheduler.allowed_failures, 0
    try:
        plan = plan_task_comparison(cuau, TARGETS, **KW)
        killing = KillingPlan(**{f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)},
                              marker=str(tmp_path / "killed-train"))
        record = tmp_path / "runs.jsonl"
        result = run_experiment(killing, resume_file=record, progress=False, executor=cluster)
    finally:
        scheduler.allowed_failures = allowed
    assert (tmp_path / "killed-train").exists()
    assert _jobs_recorded(record) == list(range(6)) and result.jobs == list(range(6))
    _same_runs(compare_tasks(cuau, TARGETS, progress=False, **KW), result)


class ClientDied(Exception):
    """What a client that dies mid-run leaves behind: an exception in its loop."""


def test_a_restarted_client_resumes_from_the_records(cuau, cluster, tmp_path):
    address = cluster.client.scheduler.address
    plan = plan_task_comparison(cuau, TARGETS, **KW)
    record = tmp_path / "runs.jsonl"

    def die_after_two(j, run, done):
        if len(done) == 2:
            raise ClientDied

    with resolve_executor(address) as first, pytest.raises(ClientDied):
        run_experiment(plan, resume_file=record, progress=False, executor=first, on_finished=die_after_two)
    recorded = _jobs_recorded(record)
    assert len(recorded) == 2  # each recorded before it counted
    submitted = []
    result = run_experiment(plan, resume_file=record, progress=False, executor=address,  # a new client
                            on_start=submitted.extend)
    assert sorted(submitted + recorded) == list(range(6))  # only what was not recorded
    assert _jobs_recorded(record) == list(range(6)) and result.jobs == list(range(6))
    # labelling: the same, with the calls counted on the workers
    structures = cuau[:8]
    out = tmp_path / "emt.jsonl"

    def die_after_three(record):
        if len(read_records(out)) == 3:
            raise ClientDied

    with resolve_executor(address) as first, pytest.raises(ClientDied):
        label(structures, out, settings=EMT_SETTINGS, progress=False, executor=first, on_record=die_after_three,
              calculator=functools.partial(emt_counted, calls=str(tmp_path / "first.txt")))
    assert len(read_records(out)) == 3
    second = tmp_path / "second.txt"
    ds = label(structures, out, settings=EMT_SETTINGS, progress=False, executor=address,
               calculator=functools.partial(emt_counted, calls=str(second)))
    assert len(second.read_text().splitlines()) == 5  # only what was not recorded
    keys = [r["key"] for r in read_records(out)]
    assert len(keys) == 8 and len(set(keys)) == 8 and len(ds) == 8
    with contextlib.suppress(FileNotFoundError):  # the first client's cancelled tasks may have run or not
        assert len((tmp_path / "first.txt").read_text().splitlines()) <= 8


def test_the_label_command_computes_on_a_cluster(cuau, cluster, tmp_path, monkeypatch, capsys):
    from mlexplore.cli import main

    label_module = importlib.import_module("mlexplore.dft.label")
    monkeypatch.setattr(label_module, "_require_gpaw", lambda: None)
    monkeypatch.setattr(label_module, "gpaw_calculator", fake)  # (sent to the workers with the tasks)
    src, rec = tmp_path / "in.extxyz", tmp_path / "run.jsonl"
    cuau[:4].save(src)
    argv = ["label", str(src), "--out", str(rec), "--quiet", "--no-hirshfeld", "--kpts", "1,1,1"]
    assert main([*argv, "--scheduler", cluster.client.scheduler.address, "--threads", "1"]) == 0
    assert "4 of 4 structures labelled" in capsys.readouterr().out
    assert sorted(r["index"] for r in read_records(rec)) == [0, 1, 2, 3]
    assert main([*argv, "--workers", "2"]) == 2
    assert "workers sizes a local cluster" in capsys.readouterr().err


def _default_dtype() -> str:
    import torch

    return str(torch.get_default_dtype())


def test_tasks_build_tensors_in_the_clients_default_dtype(cluster):
    """A notebook (or a test module) that set torch's default dtype gets the same from its tasks on
    the workers as in process: the executor carries it with each task and restores the worker's."""
    import torch

    before = torch.get_default_dtype()
    try:
        for dtype in (torch.float64, torch.float32):
            torch.set_default_dtype(dtype)
            got = dict(cluster.run(_default_dtype, [(k, ()) for k in range(4)]))
            assert set(got.values()) == {str(dtype)}
    finally:
        torch.set_default_dtype(before)
