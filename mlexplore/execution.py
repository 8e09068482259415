"""Where the heavy many-task jobs run: in this process, or on a Dask cluster.

Two protocols of the package are many independent tasks: the models of an experiment
(:func:`~mlexplore.training.run_experiment`, one task per job group) and the configurations of a
DFT labelling run (:func:`~mlexplore.dft.label`, one task per configuration). Both hand their
tasks to an :class:`Executor`, whose one job is *run these independent tasks and give me each
result as it finishes*:

- :class:`InProcessExecutor` (the default): runs them here, one after the other, when the caller
  asks for the next result; no setup, no Dask. Callbacks of the caller reach the task (an epoch
  callback can stop a training), and a caller that stops asking starts no further task.
- :class:`DaskExecutor`: submits every task to a ``dask.distributed`` cluster and yields the
  results in the order they finish. Needs the extra ``mlexplore[cluster]``
  (``pip install "mlexplore[cluster]"``, i.e. ``dask[distributed]``).

:func:`resolve_executor` is the one entry point: None (in process), an :class:`Executor`, a
``distributed.Client``, a scheduler address (``"tcp://host:8786"``) or ``"local"`` (a
``LocalCluster`` here: one worker process per usable core, one thread each).
:func:`executor_scope` is the same for one job: it closes at the end what it made.

Rules the tasks keep, so that a run on a cluster gives the serial run's results:

- a task is a pure function of its inputs, seeded (the split and the initial weights of a model
  come from its seed, not from a global random state), so *where* it runs changes nothing;
- a result counts only once the caller (the client) has written it to its record file; a rerun
  skips what the records hold, so a client that dies loses at most the results in flight, and a
  key is never recorded twice (the callers' records: :mod:`mlexplore.training.task_records`,
  :mod:`mlexplore.dft.records`);
- the threads of a task are set explicitly (``threads=``: OpenMP/BLAS/torch threads, e.g. GPAW's;
  :func:`thread_environment`); Dask workers start with one (Dask sets ``OMP_NUM_THREADS=1``).

Lost workers: the Dask scheduler itself runs again a task whose worker died, up to its
``distributed.scheduler.allowed-failures`` (3 by default); when it gives up (``KilledWorker``:
the task may be what kills its workers), :class:`DaskExecutor` submits it again, up to
``retries`` more times, and only then raises. An exception raised by the task itself is not
retried: a pure task fails the same way every time (the DFT labeller records such a failure
and goes on).

GPUs: one GPU per worker process, as dask-cuda does it. :class:`DaskExecutor` with
``devices=["0", "1", …]`` registers a worker plugin (:func:`worker_devices`) that sets
``CUDA_VISIBLE_DEVICES`` of worker ``i`` (its name: ``LocalCluster`` names its workers 0, 1, …;
``dask worker --nworkers N --name gpu`` names them ``gpu-0``, ``gpu-1``, …) to
``devices[i % len(devices)]`` before its first task, so ``device="cuda"`` in a task is that
worker's GPU. Start as many one-thread workers as there are GPUs.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, Union

from .errors import InputError, check_whole

__all__ = ["Executor", "ExecutorLike", "InProcessExecutor", "DaskExecutor", "resolve_executor",
           "executor_scope", "thread_environment", "worker_devices", "add_cluster_arguments", "INSTALL_HINT"]

#: how to get the Dask executor
INSTALL_HINT = 'pip install "mlexplore[cluster]" (or: pip install "dask[distributed]")'

#: the variables that set a task's threads: OpenMP (GPAW, torch), the BLAS libraries, mlexplore's own
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MLEXPLORE_NUM_THREADS")

#: a task: its key (to tell the results apart) and the arguments of the task function
Task = tuple[Hashable, Sequence[Any]]


def _distributed(field: str) -> Any:
    """The ``distributed`` package, or an :class:`InputError` naming ``field`` that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise InputError(f"a Dask executor needs dask.distributed, which is not installed: {INSTALL_HINT}",
                         field=field) from exc
    return distributed


def _check_threads(threads: int | None) -> int | None:
    return None if threads is None else check_whole(threads, "threads", 1)


def thread_environment(threads: int) -> dict[str, str]:
    """The environment variables that give a task ``threads`` threads: OpenMP (GPAW's, torch's), the
    BLAS libraries and ``MLEXPLORE_NUM_THREADS`` (:mod:`mlexplore.threads`), each ``str(threads)``."""
    threads = _check_threads(threads)
    return {name: str(threads) for name in THREAD_VARIABLES}


def add_cluster_arguments(add_argument: Callable[..., Any], what: str = "task") -> None:
    """The ``--scheduler``, ``--workers`` and ``--threads`` options of a command whose work goes through
    :func:`resolve_executor` (``add_argument``: a parser's ``add_argument``; ``what``: one task's
    noun, e.g. "structure"). One definition for ``mlexplore label`` and ``scripts/generate_dft.py``."""
    add_argument("--scheduler", metavar="tcp://HOST:PORT|local",
                 help=f"compute on a Dask cluster, one task per {what} (local: worker processes here; needs "
                      "mlexplore[cluster]; docs/cluster.md); the records are written here as results arrive")
    add_argument("--workers", type=int, metavar="N", help="worker processes of --scheduler local (default: the "
                 "usable cores)")
    add_argument("--threads", type=int, metavar="N", help=f"OpenMP/BLAS threads per {what} (default: 1 on a "
                 "cluster, else as OMP_NUM_THREADS)")


def _call_with_threads(func: Callable[..., Any], threads: int | None, args: Sequence[Any]) -> Any:
    """``func(*args)`` with ``threads`` threads, set three ways and restored afterwards: the environment
    (:func:`thread_environment`, for libraries that read it when they start, e.g. a GPAW imported by
    the task), the OpenMP/BLAS runtimes already loaded (``threadpoolctl``) and torch's intra-op pool.
    ``threads`` None: the process's own settings, untouched."""
    if threads is None:
        return func(*args)
    from threadpoolctl import threadpool_limits

    before = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch is not None else None
    os.environ.update(thread_environment(threads))
    try:
        if torch is not None:
            torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            return func(*args)
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if torch is not None and torch.get_num_threads() != torch_before:
            torch.set_num_threads(torch_before)


def _call_as_client(func: Callable[..., Any], threads: int | None, default_dtype: str | None,
                    args: Sequence[Any]) -> Any:
    """:func:`_call_with_threads` with torch's default dtype set to the client's (``"float64"``,
    …; None: untouched) and restored afterwards: a task builds the same tensors on a worker as in the
    client's process (a notebook that set ``torch.set_default_dtype(torch.float64)`` gets the serial
    run's results from the cluster too)."""
    if default_dtype is None:
        return _call_with_threads(func, threads, args)
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default_dtype))
    try:
        return _call_with_threads(func, threads, args)
    finally:
        torch.set_default_dtype(before)


class Executor(abc.ABC):
    """Runs independent tasks and gives each result as it finishes.

    A task is ``(key, args)``; :meth:`run` calls ``func(*args)`` for each and yields
    ``(key, result)``. Use it as a context manager (or call :meth:`close`) to free what it holds.
    """

    #: whether the tasks run in this process (then the caller's callbacks reach them)
    in_process: bool = False

    def share(self, value: Any) -> Any:
        """``value`` as an argument of many tasks, sent to the workers once (here: ``value`` itself)."""
        return value

    @abc.abstractmethod
    def run(self, func: Callable[..., Any], tasks: Iterable[Task], *, threads: int | None = None
            ) -> Iterator[tuple[Hashable, Any]]:
        """``(key, func(*args))`` of every task ``(key, args)``, each as soon as it is finished.

        Parameters
        ----------
        func:
            The task function: pure in its arguments (seeded), so that where it runs changes nothing.
        tasks:
            ``(key, args)`` pairs; read lazily by :class:`InProcessExecutor` (the next task is taken
            only when the next result is asked for), all at once by :class:`DaskExecutor`.
        threads:
            Threads of each task (OpenMP, BLAS, torch: :func:`thread_environment`); None: as the
            process running it has them.

        Yields
        ------
        ``(key, result)`` in the order the tasks finish. An exception of a task is raised here.
        Leaving the loop early (``break``, an exception of the caller) cancels the tasks not
        finished.
        """

    def close(self) -> None:
        """Free what this executor made (a cluster, a client); nothing for the in-process one."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: what ``executor=`` takes (:func:`resolve_executor`): None, an :class:`Executor`, a
#: ``distributed.Client`` (typed ``Any``: Dask is optional), a scheduler address or ``"local"``
ExecutorLike = Union[Executor, str, Any, None]


class InProcessExecutor(Executor):
    """Runs the tasks here, one at a time, each when its result is asked for (the default)."""

    in_process = True

    def run(self, func: Callable[..., Any], tasks: Iterable[Task], *, threads: int | None = None
            ) -> Iterator[tuple[Hashable, Any]]:
        threads = _check_threads(threads)
        seen: set[Hashable] = set()
        for key, args in tasks:
            if key in seen:
                raise InputError(f"two tasks have the key {key!r}", field="tasks")
            seen.add(key)
            yield key, _call_with_threads(func, threads, tuple(args))

    def __repr__(self) -> str:
        return "InProcessExecutor()"


def _device_index(name: Any) -> int:
    """The number in a worker's name: ``3`` (LocalCluster), ``"3"``, ``"gpu-3"`` (``dask worker --nworkers``)."""
    if isinstance(name, int) and not isinstance(name, bool):
        return name
    found = re.search(r"(\d+)$", str(name))
    if found is None:
        raise InputError(f"worker name {name!r} ends in no number, so it cannot choose its device: start the "
                         "workers with --name (dask worker --nworkers N --name gpu gives gpu-0, gpu-1, …)",
                         field="devices")
    return int(found.group(1))


_PLUGIN_CLASS: type | None = None


def worker_devices(devices: Sequence[str]) -> Any:
    """A Dask worker plugin that gives worker ``i`` (its name's number, :func:`_device_index`) the
    device ``devices[i % len(devices)]``: it sets the worker process's ``CUDA_VISIBLE_DEVICES`` (GPU
    indices or UUIDs, as ``nvidia-smi -L`` lists them) before its first task, and restores it when
    the plugin is removed. Register it with ``client.register_plugin`` (what
    ``DaskExecutor(devices=…)`` does); workers that join later, or that the nanny restarts, get it too.

    The device must be set before the worker initialises CUDA: register the plugin before any GPU task.
    """
    global _PLUGIN_CLASS
    devices = [str(d) for d in devices]
    if not devices:
        raise InputError("devices is empty: list one device per worker, e.g. ['0', '1']", field="devices")
    distributed = _distributed("devices")
    if _PLUGIN_CLASS is None:
        class WorkerDevices(distributed.WorkerPlugin):
            """Sets ``CUDA_VISIBLE_DEVICES`` of each worker from its name (:func:`worker_devices`)."""

            name = "mlexplore-worker-devices"

            def __init__(self, devices: list[str]) -> None:
                self.devices = devices
                self.before: str | None = None

            def setup(self, worker: Any) -> None:
                self.before = os.environ.get("CUDA_VISIBLE_DEVICES")
                device = self.devices[_device_index(worker.name) % len(self.devices)]
                os.environ["CUDA_VISIBLE_DEVICES"] = device

            def teardown(self, worker: Any) -> None:
                if self.before is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = self.before

        _PLUGIN_CLASS = WorkerDevices
    return _PLUGIN_CLASS(devices)


class DaskExecutor(Executor):
    """Runs the tasks on a ``dask.distributed`` cluster, results in the order they finish.

    Parameters
    ----------
    client:
        A ``distributed.Client`` (make one with :func:`resolve_executor` from an address or ``"local"``).
    retries:
        How many more times a task is submitted after the scheduler gave up on it because its
        workers died (``KilledWorker``; the scheduler has by then run it on
        ``distributed.scheduler.allowed-failures`` + 1 workers). Exceptions of the task itself are
        not retried.
    devices:
        One device per worker (``CUDA_VISIBLE_DEVICES`` values, e.g. ``["0", "1"]``): registers
        :func:`worker_devices` on the cluster, removed again by :meth:`close`.
    owns:
        Objects to close with the executor (the client and cluster :func:`resolve_executor` made).
    """

    def __init__(self, client: Any, *, retries: int = 1, devices: Sequence[str] | None = None,
                 owns: Sequence[Any] = ()) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InputError(f"retries must be a whole number ≥ 0, got {retries!r}", field="retries")
        self.client, self.retries, self._owns = client, retries, list(owns)
        self.devices = None if devices is None else [str(d) for d in devices]
        self._plugin: str | None = None
        if self.devices is not None:
            plugin = worker_devices(self.devices)
            client.register_plugin(plugin)
            self._plugin = plugin.name

    @property
    def n_workers(self) -> int:
        """Workers connected now."""
        return len(self.client.nthreads())

    def share(self, value: Any) -> Any:
        """``value`` scattered to every worker once (a Future the tasks take as an argument); a copy on
        each worker, so losing one worker loses no copy the others need."""
        return self.client.scatter([value], broadcast=True, hash=False)[0]

    def run(self, func: Callable[..., Any], tasks: Iterable[Task], *, threads: int | None = None
            ) -> Iterator[tuple[Hashable, Any]]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        threads = _check_threads(threads)
        name = getattr(func, "__name__", "task")
        torch = sys.modules.get("torch")  # the client's default dtype goes with every task
        default_dtype = str(torch.get_default_dtype()).removeprefix("torch.") if torch is not None else None

        def submit(key: Hashable, args: Sequence[Any]) -> Any:
            future = self.client.submit(_call_as_client, func, threads, default_dtype, tuple(args), pure=False,
                                        key=f"{name}-{key}-{os.urandom(6).hex()}")
            pending[future] = key
            return future

        pending: dict[Any, Hashable] = {}
        arguments: dict[Hashable, tuple] = {}
        tries: dict[Hashable, int] = {}
        try:
            for key, args in tasks:
                if key in arguments:
                    raise InputError(f"two tasks have the key {key!r}", field="tasks")
                arguments[key], tries[key] = tuple(args), 0
                submit(key, args)
            finished = as_completed(list(pending))
            for future in finished:
                key = pending.pop(future)
                if future.status == "error" and isinstance(future.exception(), KilledWorker) \
                        and tries[key] < self.retries:
                    tries[key] += 1
                    finished.add(submit(key, arguments[key]))
                    continue
                result = future.result()  # raises the task's exception, with its traceback
                future.release()
                yield key, result
        finally:
            if pending:
                self.client.cancel(list(pending))

    def close(self) -> None:
        """Remove the device plugin this executor registered; close the client and cluster it made."""
        if self._plugin is not None and self.client.status == "running":
            with contextlib.suppress(Exception):  # a scheduler already gone has nothing to remove
                self.client.unregister_worker_plugin(self._plugin)
            self._plugin = None
        for thing in self._owns:
            thing.close()
        self._owns = []

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address!r}, retries={self.retries})"


def _local_cluster(workers: int | None) -> tuple[Any, Any]:
    """A ``LocalCluster`` of ``workers`` processes (None: the usable cores), one thread each, no
    dashboard, and its client."""
    distributed = _distributed("executor")
    if workers is None:
        from .threads import usable_cores

        workers = usable_cores()
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    try:
        client = distributed.Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return client, cluster


def resolve_executor(executor: ExecutorLike = None, *, workers: int | None = None,
                     retries: int = 1, devices: Sequence[str] | None = None) -> Executor:
    """The :class:`Executor` for ``executor``: the one entry point of the functions that take ``executor=``.

    Parameters
    ----------
    executor:
        None: :class:`InProcessExecutor` (today's serial run); an :class:`Executor`: itself;
        a ``distributed.Client``: a :class:`DaskExecutor` on it (the client stays the caller's);
        a scheduler address such as ``"tcp://10.0.0.5:8786"``: a new client of that scheduler;
        ``"local"``: a ``LocalCluster`` on this machine, ``workers`` processes of one thread each.
    workers:
        Worker processes of ``"local"`` (default: the usable cores, :func:`mlexplore.threads.usable_cores`).
    retries, devices:
        Of the :class:`DaskExecutor` made here.

    Raises
    ------
    InputError
        ``executor`` is none of these (naming it), ``workers`` is given for anything but ``"local"``,
        or a Dask executor is asked for and ``dask.distributed`` is not installed (saying how to install it).
    """
    if workers is not None and executor != "local":
        raise InputError(f"workers sizes a local cluster (executor='local'), not {executor!r}", field="workers")
    if workers is not None:
        workers = check_whole(workers, "workers", 1)
    if executor is None:
        return InProcessExecutor()
    if isinstance(executor, Executor):
        return executor
    if isinstance(executor, str):
        if executor == "local":
            client, cluster = _local_cluster(workers)
            return _owning(client, [client, cluster], retries, devices)
        if "://" in executor:
            distributed = _distributed("executor")
            client = distributed.Client(executor)
            return _owning(client, [client], retries, devices)
        raise InputError(f"executor {executor!r} is not a scheduler address (tcp://host:port) or 'local'",
                         field="executor")
    distributed = sys.modules.get("distributed")
    if distributed is not None and isinstance(executor, distributed.Client):
        return DaskExecutor(executor, retries=retries, devices=devices)
    raise InputError(f"executor must be None, an Executor, a distributed.Client, a scheduler address or 'local', "
                     f"not {type(executor).__name__}", field="executor")


def _owning(client: Any, owns: list[Any], retries: int, devices: Sequence[str] | None) -> DaskExecutor:
    try:
        return DaskExecutor(client, retries=retries, devices=devices, owns=owns)
    except BaseException:
        for thing in owns:
            thing.close()
        raise


@contextlib.contextmanager
def executor_scope(executor: ExecutorLike = None, **options: Any) -> Iterator[Executor]:
    """:func:`resolve_executor` for one job: the executor, closed at the end if it was made here (from
    None, an address, ``"local"`` or a Client); an :class:`Executor` passed in stays open for its owner."""
    resolved = resolve_executor(executor, **options)
    try:
        yield resolved
    finally:
        if resolved is not executor:
            resolved.close()
