"""Repeated experiments: one plan (splits × initialisations × variants), one driver, one result type.

A *variant* is what an experiment compares: a task combination (STL/MTL, 000/001 table 1,
:func:`compare_tasks`), a descriptor basis (002 §4, :func:`~mlexplore.training.compare_bases`)
or the one model of a bag (002 §4.2.1, :func:`bag_of_models`). A plan lists its jobs
``(run, variant)`` run by run; run ``r`` uses the split of seed ``seed + r`` (or one split
for all runs, ``vary="init"``) and initial weights from ``seed + r``, so the variants of one
run are compared on the same data (paired runs).

:func:`run_experiment` is the one driver: it trains the jobs one at a time or vectorised
(:meth:`ExperimentPlan.job_groups`), records finished models in a resume file, calls back per
epoch and per finished model, stops when asked, and returns an :class:`ExperimentResult`:
the table rows (mean ± std over runs), the raw runs, their per-run test errors and the
table the papers print (:meth:`ExperimentResult.to_text`, :meth:`ExperimentResult.to_markdown`).
The TaskComparison panel drives its trainings through the same function.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import inspect
import itertools
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..analysis.metrics import r2, regression_report, rmse
from ..data.dataset import StructureDataset
from ..data.splits import random_split, stratified_split
from ..errors import InputError
from ..execution import ExecutorLike, executor_scope
from ..models.graph import GraphNet
from ..models.lattice import LatticeMLP
from .engine import DEFAULTS
from .ensemble import fit_task_members
from .fit import History, resolve_device
from .labels import run_label
from .task_models import fit_tasks, predict_tasks
from .task_records import (append_task_record, plan_fingerprint, read_task_records, run_from_record,
                           run_to_record)

__all__ = ["ExperimentPlan", "ExperimentResult", "run_experiment", "markdown_table",
           "TaskRun", "TaskComparisonOptions", "TaskComparisonPlan", "plan_task_comparison", "compare_tasks",
           "summarise_task_runs", "task_combinations", "format_task_table", "task_table_cells", "deprecated_runs_pair",
           "BagRun", "BagOfModelsPlan", "bag_of_models"]


#: the comparison's defaults: the lattice protocol of 000 for every model (001's GraphNet protocol,
#: lr 1e-3 and a 70/15/15 split, is ``DEFAULTS["graph"]``: what ``mlexplore compare`` passes)
_TASKS = DEFAULTS["tasks"]


# ---------------------------------------------------------------------------------------- generic
def markdown_table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A GitHub/pandoc markdown table: ``header`` names, one list of cell strings per line."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in cells]
    return "\n".join(lines)


class ExperimentPlan(abc.ABC):
    """What :func:`run_experiment` needs of a plan. Subclasses set ``jobs`` (a list of ``(run, variant)``
    in training order) and implement :meth:`run`, :meth:`summarise`, :meth:`format_table` and
    :meth:`markdown` (abstract: a plan without them cannot be made).

    The defaults train one job at a time, keep no record file and have no summary beyond the rows.
    """

    jobs: list[tuple[int, Any]]

    @abc.abstractmethod
    def run(self, job: int, callback: Callable | None = None) -> Any:
        """Train and score job number ``job``; ``callback(epoch, history)`` each epoch (False stops)."""

    def job_groups(self, pending: Sequence[int], vectorise: bool | None = None) -> tuple[list[list[int]], bool]:
        """How the ``pending`` jobs are trained: lists of jobs trained together, and whether together."""
        if vectorise:
            raise InputError(f"{type(self).__name__} trains one model at a time", field="vectorise")
        return [[j] for j in pending], False

    def run_group(self, group: Sequence[int], together: bool, callbacks: Sequence[Callable | None] | None = None
                  ) -> list[Any]:
        """Train one group of :meth:`job_groups`; one callback per job (or none)."""
        callback = callbacks[0] if callbacks else None
        return [self.run(group[0], callback=callback) if callback is not None else self.run(group[0])]

    @abc.abstractmethod
    def summarise(self, runs: Sequence[Any]) -> list[dict]:
        """Table rows (mean ± std over runs) of finished runs (any subset)."""

    def summary(self, runs: Sequence[Any]) -> dict[str, Any]:
        """Results beyond the rows (e.g. the bag's aggregate metrics), reachable as ``result[key]``."""
        return {}

    @abc.abstractmethod
    def format_table(self, rows: Sequence[dict]) -> str:
        """The rows as a fixed-width text table."""

    @abc.abstractmethod
    def markdown(self, rows: Sequence[dict]) -> str:
        """The rows as a markdown table (the layout the papers print)."""

    # record files (resume): plans that support them override these three
    def fingerprint(self) -> str | None:
        """A hash of the plan's data and options for its record file; None: no record file."""
        return None

    def to_record(self, run: Any, job: int, fingerprint: str) -> dict:
        """What a finished run leaves in the record file."""
        raise InputError(f"{type(self).__name__} keeps no record file", field="resume_file")

    def from_record(self, record: dict) -> Any:
        """A run rebuilt from its record."""
        raise InputError(f"{type(self).__name__} keeps no record file", field="resume_file")

    def cached_split(self, seed: int, make: Callable[[int], Any]) -> Any:
        """``make(seed)``, remembered for the last seed asked: jobs are ordered run by run, so each
        run's split is made once for all its variants (a split of 28 000 structures: 0.4 s)."""
        last = self.__dict__.get("_split_cache")
        if last is None or last[0] != seed:
            last = (seed, make(seed))
            self.__dict__["_split_cache"] = last
        return last[1]


class ExperimentResult(list):
    """The result of :func:`run_experiment`: a list of table rows (dicts, mean ± std over runs), so
    code that used the rows of :func:`compare_tasks` / :func:`~mlexplore.training.compare_bases`
    keeps working, with:

    - ``runs``: the raw runs, in job order (:class:`TaskRun`, :class:`~mlexplore.training.basis_comparison.BasisRun`
      or :class:`BagRun`); each has ``run``, ``variant``, ``seconds`` and ``errors(target)``;
    - ``jobs``: the plan's job number of each run; ``plan``: the plan that made them;
    - ``summary``: results beyond the rows; ``result["aggregate"]`` (a string key) reads it, as
      :func:`bag_of_models`'s dict did (``keys()``, ``get()`` too);
    - :meth:`errors`: the per-run test errors of a variant; :meth:`to_text` / :meth:`to_markdown`: the table.
    """

    def __init__(self, rows: Sequence[dict], runs: Sequence[Any], plan: ExperimentPlan | None = None,
                 summary: dict[str, Any] | None = None, jobs: Sequence[int] | None = None) -> None:
        super().__init__(rows)
        self.runs = list(runs)
        self.plan = plan
        self.summary = dict(summary or {})
        self.jobs = list(jobs) if jobs is not None else list(range(len(self.runs)))

    @property
    def rows(self) -> list[dict]:
        """The table rows as a plain list."""
        return list(self)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.summary:
                raise KeyError(f"{key!r}: this result's summary has {sorted(self.summary)}; rows are indexed by number")
            return self.summary[key]
        return super().__getitem__(key)

    def __contains__(self, item) -> bool:
        if isinstance(item, str):  # a summary key, as in bag_of_models's former dict
            return item in self.summary
        return super().__contains__(item)

    def keys(self):
        """The summary's keys (what ``result[key]`` reads)."""
        return self.summary.keys()

    def items(self):
        """The summary's items (``bag_of_models`` returned a dict of these)."""
        return self.summary.items()

    def values(self):
        """The summary's values."""
        return self.summary.values()

    def get(self, key: str, default: Any = None) -> Any:
        """``result[key]`` from the summary, or ``default``."""
        return self.summary.get(key, default)

    @property
    def variants(self) -> list[str]:
        """The variants of the runs, in order of first appearance (e.g. ``"STL energy"``, a basis name)."""
        return list(dict.fromkeys(r.variant for r in self.runs))

    def errors(self, variant: str, target: str | None = None) -> list[np.ndarray]:
        """Test errors (predicted − reference, the target's units) of every run of ``variant``, one
        array per run. ``target``: for task runs, which of the combination's targets (default: its only one)."""
        out = [r.errors(target) for r in self.runs if r.variant == variant]
        if not out:
            raise InputError(f"no run of {variant!r}; the variants are {self.variants}", field="variant")
        return out

    def to_text(self) -> str:
        """The table as fixed-width text (:func:`format_task_table`, :func:`~mlexplore.training.format_basis_table`)."""
        return self._plan_or_fail().format_table(list(self))

    def to_markdown(self) -> str:
        """The table as markdown: mean ± std per variant, as the papers print it."""
        return self._plan_or_fail().markdown(list(self))

    def _plan_or_fail(self) -> ExperimentPlan:
        if self.plan is None:
            raise InputError("this result has no plan to format its table", field="plan")
        return self.plan

    def __repr__(self) -> str:
        return f"ExperimentResult({len(self)} rows, {len(self.runs)} runs)"


def _train_group(plan: ExperimentPlan, group: list[int], together: bool,
                 callbacks: list[Callable] | None) -> list[Any]:
    """One task of :func:`run_experiment`: train one group of jobs (:meth:`ExperimentPlan.run_group`)."""
    return plan.run_group(group, together, callbacks)


def run_experiment(plan: ExperimentPlan, *, resume_file: str | os.PathLike | None = None,
                   vectorise: bool | None = None, progress: bool = True, desc: str = "runs",
                   on_epoch: Callable[[int, int, History], bool | None] | None = None,
                   on_start: Callable[[list[int]], None] | None = None,
                   on_finished: Callable[[int, Any, list[Any]], None] | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   executor: ExecutorLike = None) -> ExperimentResult:
    """Train every job of ``plan`` that is not in ``resume_file`` yet; return the :class:`ExperimentResult`.

    ``resume_file`` (``.jsonl``): every finished model is appended; a rerun of the same plan (same data
    and options) reads those back instead of training them (plans that keep records: :class:`TaskComparisonPlan`).
    ``vectorise``: train jobs together where the plan can (:meth:`ExperimentPlan.job_groups`; None: the plan's default).
    ``on_epoch(job, epoch, history)`` after every epoch (return False to stop that model);
    ``on_start(group)`` before each group of jobs; ``on_finished(job, run, finished)`` after each
    finished model, with every finished run so far (models read from the record file first, their
    ``model`` is None). ``should_stop()`` is asked before and after each group: once True the
    driver returns what has finished; a group cut short is dropped.

    ``executor`` (:func:`~mlexplore.execution.resolve_executor`): where the groups are trained. None:
    here, one after the other. A Dask executor (a ``distributed.Client``, ``"tcp://…"``, ``"local"``):
    each job group is a task, the plan is sent to every worker once, and the groups are trained at
    the same time on the workers; ``on_start`` is called as each group is submitted, ``on_finished``
    as each arrives (in the order they finish; the result's runs are in job order), ``on_epoch``
    cannot reach a worker (an :class:`~mlexplore.errors.InputError`). Every run is the one the serial
    driver trains (seeded by its run), so the table is the same. Each finished model is appended to
    ``resume_file`` by this process as it arrives, before it counts: a rerun after this process died
    trains only what is not recorded, and no job is recorded twice. An executor made here (from an
    address or ``"local"``) is closed at the end.
    """
    from tqdm.auto import tqdm

    done: dict[int, dict] = {}
    fingerprint = ""
    if resume_file is not None:
        fingerprint = plan.fingerprint()
        if fingerprint is None:
            raise InputError(f"{type(plan).__name__} keeps no record file", field="resume_file")
        done = read_task_records(resume_file, fingerprint)
    finished = {j: plan.from_record(done[j]) for j in sorted(done) if j < len(plan.jobs)}
    for j, run in finished.items():
        if on_finished is not None:
            on_finished(j, run, [finished[k] for k in sorted(finished) if k <= j])
    pending = [j for j in range(len(plan.jobs)) if j not in finished]
    stop = should_stop or (lambda: False)
    with executor_scope(executor) as ex, \
            tqdm(total=len(plan.jobs), initial=len(finished), desc=desc, disable=not progress) as bar:
        if on_epoch is not None and not ex.in_process:
            raise InputError(f"on_epoch cannot reach the workers of {ex!r}: train in this process "
                             "(executor=None) to follow the epochs", field="on_epoch")
        groups, together = plan.job_groups(pending, vectorise)
        shared = ex.share(plan) if groups else plan

        def tasks():
            for number, group in enumerate(groups):
                if on_start is not None:
                    on_start(list(group))
                callbacks = None
                if on_epoch is not None:
                    callbacks = [(lambda epoch, history, j=j: on_epoch(j, epoch, history)) for j in group]
                yield number, (shared, list(group), together, callbacks)

        # (closing: leaving the loop, by a stop or an error here, cancels the tasks still running)
        with contextlib.closing(ex.run(_train_group, tasks() if not stop() else iter(()))) as results:
            for number, trained in results:
                if stop() and ex.in_process:
                    break  # cut short (the epoch callbacks saw the stop): not finished models
                group = groups[number]
                for j, run in zip(group, trained):  # (groups hold pending jobs, each once: recorded once)
                    if resume_file is not None:
                        append_task_record(resume_file, plan.to_record(run, j, fingerprint))
                    finished[j] = run
                    if on_finished is not None:
                        on_finished(j, run, [finished[k] for k in sorted(finished)])
                bar.update(len(group))
                if stop():
                    break
    jobs = sorted(finished)
    runs = [finished[j] for j in jobs]
    return ExperimentResult(plan.summarise(runs), runs, plan, plan.summary(runs), jobs)


def deprecated_runs_pair(result: ExperimentResult, name: str) -> tuple[ExperimentResult, list]:
    """``(result, result.runs)``, what ``name(..., return_runs=True)`` returned before the result held
    its runs, with a DeprecationWarning saying so."""
    warnings.warn(f"{name}(..., return_runs=True) is deprecated: the result has the runs (result.runs)",
                  DeprecationWarning, stacklevel=3)
    return result, result.runs


# ---------------------------------------------------------------------------------- task runs
def task_combinations(targets: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of the targets, singles first (H, C, M, HC, HM, CM, HCM)."""
    return [c for r in range(1, len(targets) + 1) for c in itertools.combinations(targets, r)]


@dataclass
class TaskRun:
    """One trained model of a comparison: which run and task combination, the fitted model, its
    history, training time (s), and per target the test references and predictions (the
    target's units)."""

    run: int
    tasks: tuple[str, ...]
    model: Any
    history: History
    seconds: float
    reference: dict[str, np.ndarray]
    predicted: dict[str, np.ndarray]

    @property
    def label(self) -> str:
        """``"STL a"`` / ``"MTL a+b"`` (:func:`~mlexplore.training.labels.run_label`)."""
        return run_label(self.tasks)

    @property
    def variant(self) -> str:
        """The variant of the experiment: the label."""
        return self.label

    def errors(self, target: str | None = None) -> np.ndarray:
        """Test errors (predicted − reference) of one target (default: the only one of an STL run)."""
        if target is None:
            if len(self.tasks) != 1:
                raise InputError(f"{self.label} predicts {list(self.tasks)}: name the target", field="target")
            target = self.tasks[0]
        if target not in self.predicted:
            raise InputError(f"{self.label} does not predict {target!r}", field="target")
        return self.predicted[target] - self.reference[target]


def _network_options(model: str) -> list[str]:
    cls, fixed = (LatticeMLP, {"self", "n_sites", "elements", "tasks"}) if model == "lattice" else \
        (GraphNet, {"self", "elements", "tasks"})
    return [k for k in inspect.signature(cls.__init__).parameters if k not in fixed]


@dataclass
class TaskComparisonOptions:
    """The training options of an STL/MTL comparison (:func:`plan_task_comparison`), typed.

    ``model``: ``"lattice"`` (:class:`LatticeMLP`, 000) or ``"graph"`` (:class:`GraphNet`, 001);
    ``fractions``: train/validation/test (or train/test) shares; ``stratify``: split by composition;
    ``epochs``; ``lr`` (Adam learning rate); ``batch_fraction``: mini-batch as a share of the training
    set; ``elements``: the network's elements (None: the dataset's); ``device`` (``"auto"``: CUDA if
    any); ``seed``: run r uses ``seed + r``; ``vary``: ``"split"`` (a new split per run, 000) or
    ``"init"`` (one split, new initial weights, 001); ``patience``: epochs without a better validation
    loss before a model stops (None: never); ``model_kwargs``: the network's own settings (lattice:
    ``width``, ``activation``; graph: ``cutoff`` Å, ``width``, ``layers``, ``head``).

    Build it from flat keywords with :meth:`from_keywords` (what the functions do); an unknown
    name raises :class:`~mlexplore.errors.InputError`. Its record-file fingerprint is
    :meth:`fingerprint_fields` (the device does not count).
    """

    model: str = "lattice"
    fractions: tuple[float, ...] = _TASKS.fractions
    stratify: bool = True
    epochs: int = _TASKS.epochs
    lr: float = _TASKS.lr
    batch_fraction: float = _TASKS.batch_fraction
    elements: list[str] | None = None
    device: Any = "auto"
    seed: int = 0
    vary: str = "split"
    patience: int | None = _TASKS.patience
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vary not in ("split", "init"):
            raise InputError(f"vary must be 'split' or 'init', got {self.vary!r}", field="vary")
        if self.model not in ("lattice", "graph"):
            raise InputError(f"model must be 'lattice' or 'graph', got {self.model!r}", field="model")
        self.fractions = tuple(self.fractions)
        if self.elements is not None:
            self.elements = list(self.elements)
        self.model_kwargs = dict(self.model_kwargs)
        allowed = _network_options(self.model)
        unknown = sorted(set(self.model_kwargs) - set(allowed))
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)} for the {self.model} model; it takes "
                             f"{', '.join(allowed)}, and compare_tasks takes n_runs, "
                             f"{', '.join(f.name for f in dataclasses.fields(self) if f.name != 'model_kwargs')}",
                             field=unknown[0])

    @classmethod
    def field_names(cls) -> list[str]:
        """The option names (``model_kwargs`` holds the network's)."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_keywords(cls, **keywords: Any) -> TaskComparisonOptions:
        """Options from flat keywords: the fields by name, every other keyword a network setting
        (checked against the chosen model's; an unknown one raises InputError naming it)."""
        names = set(cls.field_names()) - {"model_kwargs"}
        own = {k: v for k, v in keywords.items() if k in names}
        network = {k: v for k, v in keywords.items() if k not in names}
        network = {**keywords.get("model_kwargs", {}), **{k: v for k, v in network.items() if k != "model_kwargs"}}
        return cls(**own, model_kwargs=network)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TaskComparisonOptions:
        """Options from a dict of field names only (a saved configuration); an unknown key raises InputError."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}; the options are "
                             f"{', '.join(cls.field_names())}", field=unknown[0])
        return cls(**values)

    def replace(self, **changes: Any) -> TaskComparisonOptions:
        """A copy with some options changed (flat keywords, as :meth:`from_keywords`)."""
        current = {f: getattr(self, f) for f in self.field_names() if f != "model_kwargs"}
        return type(self).from_keywords(**{**current, "model_kwargs": self.model_kwargs, **changes})

    def fingerprint_fields(self) -> dict[str, Any]:
        """What a record file's fingerprint hashes: every option but the device, ``patience`` only when
        it is not 50 (so records written before it was an option stay valid)."""
        out = dict(model=self.model, fractions=tuple(self.fractions), stratify=self.stratify, epochs=self.epochs,
                   lr=self.lr, batch_fraction=self.batch_fraction, elements=self.elements, seed=self.seed,
                   vary=self.vary, model_kwargs=self.model_kwargs)
        if self.patience != 50:
            out["patience"] = self.patience
        return out

    # the string-keyed dict these options were (``plan.options["model_kwargs"]``), kept for a release
    def keys(self) -> list[str]:
        """The keys of the dict layout the options had (deprecated)."""
        return ["device", *self.fingerprint_fields()]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __getitem__(self, key: str) -> Any:
        warnings.warn(f"options[{key!r}] is deprecated: use options.{key} (TaskComparisonOptions)",
                      DeprecationWarning, stacklevel=2)
        if key not in self.field_names():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``options[key]`` or ``default`` (deprecated dict access)."""
        return getattr(self, key) if key in self.field_names() else default


@dataclass
class TaskComparisonPlan(ExperimentPlan):
    """Everything :func:`compare_tasks` needs to train its models: the dataset, the targets and
    their kinds (``"structure"`` / ``"site"``), the (run, combination) jobs in order, and the
    :class:`TaskComparisonOptions` (``elements`` resolved)."""

    dataset: StructureDataset
    targets: list[str]
    kinds: dict[str, str]
    jobs: list[tuple[int, tuple[str, ...]]]
    options: TaskComparisonOptions

    def _split(self, r: int) -> tuple[StructureDataset, StructureDataset | None, StructureDataset]:
        """The (train, validation, test) sets of run ``r``."""
        o = self.options
        return self.cached_split(o.seed + r if o.vary == "split" else o.seed, self._make_split)

    def _make_split(self, split_seed: int) -> tuple[StructureDataset, StructureDataset | None, StructureDataset]:
        o = self.options
        split = (stratified_split if o.stratify else random_split)(self.dataset, o.fractions, seed=split_seed)
        train, val, test = split if len(split) == 3 else (split[0], None, split[1])
        return train, val, test  # (the splitters refuse fractions that leave a set empty)

    def _network(self, r: int, combo: tuple[str, ...]):
        """The untrained network of run ``r`` (initial weights from seed ``seed + r``)."""
        o = self.options
        torch.manual_seed(o.seed + r)
        tasks = {t: self.kinds[t] for t in combo}
        if o.model == "lattice":
            return LatticeMLP(int(self.dataset.n_atoms[0]), o.elements, tasks, **o.model_kwargs)
        return GraphNet(o.elements, tasks, **o.model_kwargs)

    def _scored(self, r, combo, net, history, seconds, test) -> TaskRun:
        pred = predict_tasks(net, test)
        return TaskRun(run=r, tasks=combo, model=net, history=history, seconds=seconds,
                       reference={t: test.label(t).reshape(-1) for t in combo},
                       predicted={t: pred[t] for t in combo})

    def run(self, job: int, callback=None) -> TaskRun:
        """Train and score job number ``job``; ``callback(epoch, history)`` every epoch (return False to stop)."""
        r, combo = self.jobs[job]
        o = self.options
        train, val, test = self._split(r)
        net = self._network(r, combo)
        t0 = time.perf_counter()
        history = fit_tasks(net, train, val, epochs=o.epochs, lr=o.lr, batch_fraction=o.batch_fraction,
                            patience=o.patience, device=o.device, seed=o.seed + r, callback=callback)
        return self._scored(r, combo, net, history, time.perf_counter() - t0, test)

    def splits_of(self, jobs: Sequence[int]) -> dict[int, tuple]:
        """The (train, validation, test) sets of the runs of these jobs, each run's split made once
        (a run's split serves all its task combinations)."""
        return {r: self._split(r) for r in dict.fromkeys(self.jobs[j][0] for j in jobs)}

    def can_run_together(self, jobs: Sequence[int], splits: dict[int, tuple] | None = None) -> bool:
        """Whether :meth:`run_together` can train these jobs at once: lattice models of one task
        combination on splits of equal sizes. ``splits``: from :meth:`splits_of`, if already made."""
        if self.options.model != "lattice" or len({self.jobs[j][1] for j in jobs}) != 1:
            return False
        if len(np.unique(self.dataset.n_atoms)) != 1:
            return False
        splits = splits if splits is not None else self.splits_of(jobs)
        sizes = {tuple(len(p) if p is not None else -1 for p in splits[self.jobs[j][0]]) for j in jobs}
        return len(sizes) == 1

    def run_together(self, jobs: Sequence[int], splits: dict[int, tuple] | None = None,
                     callbacks: Sequence[Callable | None] | None = None) -> list[TaskRun]:
        """Train jobs of one task combination together, vectorised (:func:`fit_task_members`): each
        model is the one :meth:`run` would give (same split, initial weights, batch order, early
        stopping; to float rounding). ``seconds`` of each run: the group's time divided by its size.
        ``splits``: from :meth:`splits_of`, if already made; ``callbacks``: one per job."""
        splits = splits if splits is not None else self.splits_of(jobs)
        if not self.can_run_together(jobs, splits):
            raise InputError("these jobs cannot be trained together (graph models, different task "
                             "combinations or split sizes): use run()", field="jobs")
        o = self.options
        runs = [self.jobs[j][0] for j in jobs]
        combo = self.jobs[jobs[0]][1]
        splits = [splits[r] for r in runs]
        nets = [self._network(r, combo) for r in runs]
        t0 = time.perf_counter()
        histories = fit_task_members(nets, [s[0] for s in splits],
                                     [s[1] for s in splits] if splits[0][1] is not None else None,
                                     seeds=[o.seed + r for r in runs], epochs=o.epochs, lr=o.lr,
                                     batch_fraction=o.batch_fraction, patience=o.patience,
                                     device=o.device, callbacks=callbacks)
        seconds = (time.perf_counter() - t0) / len(jobs)
        return [self._scored(r, combo, net, h, seconds, s[2]) for r, net, h, s in zip(runs, nets, histories, splits)]

    # ------------------------------------------------------------- the driver's interface
    def job_groups(self, pending: Sequence[int], vectorise: bool | None = None) -> tuple[list[list[int]], bool]:
        """One job at a time, or (``vectorise``; default: lattice models on a CUDA device) the runs of
        each combination together."""
        o = self.options
        together = o.model == "lattice" and resolve_device(o.device).type == "cuda" if vectorise is None \
            else bool(vectorise)
        if together:
            by_combo: dict[tuple, list[int]] = {}
            for j in pending:
                by_combo.setdefault(self.jobs[j][1], []).append(j)
            splits = self.splits_of(pending) if o.model == "lattice" else {}
            if all(self.can_run_together(g, splits) for g in by_combo.values()):
                self.__dict__["_group_splits"] = splits
                return list(by_combo.values()), True
            if vectorise:
                raise InputError("vectorise=True needs lattice models, structures of one size and splits of "
                                 "equal sizes", field="vectorise")
        return [[j] for j in pending], False

    def run_group(self, group, together, callbacks=None) -> list[TaskRun]:
        if together:
            return self.run_together(group, self.__dict__.get("_group_splits"), callbacks)
        return super().run_group(group, together, callbacks)

    def summarise(self, runs: Sequence[TaskRun]) -> list[dict]:
        return summarise_task_runs(runs)

    def format_table(self, rows: Sequence[dict]) -> str:
        return format_task_table(list(rows))

    def markdown(self, rows: Sequence[dict]) -> str:
        targets, table = task_table_cells(rows)
        lines = [[run_label(c), *(f"{r['rmse_mean']:.4g} ± {r['rmse_std']:.2g}" if r else "–" for r in cells),
                  f"{secs:.2f}"] for c, cells, secs in table]
        return markdown_table(["model", *(f"{t} RMSE" for t in targets), "time (s)"], lines)

    def fingerprint(self) -> str:
        return plan_fingerprint(self)

    def to_record(self, run: TaskRun, job: int, fingerprint: str) -> dict:
        return run_to_record(run, job, fingerprint)

    def from_record(self, record: dict) -> TaskRun:
        return run_from_record(record, TaskRun)


def _with_options_signature(func: Callable, options: type) -> Callable:
    """Give ``func`` (which takes ``**keywords`` for ``options``) a signature that lists the option
    fields as keyword-only parameters, so ``help()`` and editors show them (one definition: the dataclass)."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    have = {p.name for p in params}
    for f in dataclasses.fields(options):
        if f.name in have or f.name == "model_kwargs":
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=f.type))
    params.append(inspect.Parameter("model_kwargs", inspect.Parameter.VAR_KEYWORD))
    positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY
                  and p.kind is not inspect.Parameter.VAR_KEYWORD]
    keyword = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    func.__signature__ = sig.replace(parameters=positional + keyword + [params[-1]])
    return func


def plan_task_comparison(dataset: StructureDataset, targets: Sequence[str],
                         combinations: Sequence[Sequence[str]] | None = None, model: str | None = None,
                         n_runs: int = 3, *, options: TaskComparisonOptions | None = None,
                         **keywords: Any) -> TaskComparisonPlan:
    """Check the inputs of :func:`compare_tasks` and list its jobs: ``n_runs`` runs × the task
    ``combinations`` (default: every subset of ``targets``), run by run.

    The training options are the fields of :class:`TaskComparisonOptions`, given as keywords
    (any other keyword is a network setting, e.g. ``width``) or as ``options=`` (keywords then
    change it). ``model``: ``"lattice"`` (the default) or ``"graph"``; it and ``n_runs`` may also be
    given by position, as before the options were typed.
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    if model is not None:
        keywords["model"] = model
    if n_runs < 1:
        raise InputError("n_runs must be ≥ 1", field="n_runs")
    if options is None:
        options = TaskComparisonOptions.from_keywords(**keywords)
    elif keywords:
        options = options.replace(**keywords)
    targets = list(targets)
    if not targets:
        raise InputError("no targets chosen", field="targets")
    for t in targets:
        if t not in dataset:
            raise InputError(f"target {t!r} is not in the dataset (it has: {', '.join(dataset.label_names)})",
                             field="targets")
    combos = [tuple(c) for c in (combinations or task_combinations(targets))]
    if not combos:
        raise InputError("no task combinations chosen", field="combinations")
    for c in combos:
        unknown = [t for t in c if t not in targets]
        if unknown:
            raise InputError(f"combination {'+'.join(c)} uses {unknown}, not among the targets {targets}",
                             field="combinations")
    kinds = {t: "site" if dataset.is_per_atom(t) else "structure" for t in targets}
    options = dataclasses.replace(options, elements=list(options.elements or dataset.elements))
    jobs = [(r, c) for r in range(n_runs) for c in combos]
    return TaskComparisonPlan(dataset=dataset, targets=targets, kinds=kinds, jobs=jobs, options=options)


_with_options_signature(plan_task_comparison, TaskComparisonOptions)


def summarise_task_runs(runs: Sequence[TaskRun]) -> list[dict]:
    """Rows of the comparison table from finished runs (any subset, e.g. after a stop):
    ``{"tasks", "n_tasks", "target", "rmse_mean", "rmse_std", "r2_mean", "r2_std", "seconds_mean",
    "fom", "n_runs"}`` (RMSE in the target's units, seconds of training), with
    ``fom = 1 / (time × RMSE)`` (002 eq 4.7)."""
    scores: dict[tuple, dict[str, list]] = {}
    for run in runs:
        for t in run.tasks:
            s = scores.setdefault((run.tasks, t), {"rmse": [], "r2": [], "seconds": []})
            s["rmse"].append(rmse(run.reference[t], run.predicted[t]))
            s["r2"].append(r2(run.reference[t], run.predicted[t]))
            s["seconds"].append(run.seconds)
    rows = []
    for (combo, t), s in scores.items():
        rm, tm = float(np.mean(s["rmse"])), float(np.mean(s["seconds"]))
        rows.append({"tasks": "+".join(combo), "n_tasks": len(combo), "target": t,
                     "rmse_mean": rm, "rmse_std": float(np.std(s["rmse"])),
                     "r2_mean": float(np.mean(s["r2"])), "r2_std": float(np.std(s["r2"])),
                     "seconds_mean": tm, "fom": 1.0 / (tm * rm) if rm > 0 and tm > 0 else math.inf,
                     "n_runs": len(s["rmse"])})
    return rows


def compare_tasks(dataset: StructureDataset, targets: Sequence[str], combinations: Sequence[Sequence[str]] | None = None,
                  model: str | None = None, n_runs: int = 3, *, progress: bool = True, return_runs: bool = False,
                  resume_file: str | os.PathLike | None = None, vectorise: bool | None = None,
                  executor: ExecutorLike = None, **options: Any) -> ExperimentResult:
    """Train every STL and MTL combination of ``targets`` ``n_runs`` times; score on held-out test sets.

    The options are those of :func:`plan_task_comparison` (:class:`TaskComparisonOptions`):
    ``model`` ``"lattice"`` (:class:`LatticeMLP`, 000; network keywords ``width``, ``activation``)
    or ``"graph"`` (:class:`GraphNet`, 001; ``cutoff``, ``width``, ``layers``, ``head``),
    ``fractions``, ``stratify``, ``epochs``, ``lr``, ``batch_fraction``, ``elements``, ``device``,
    ``seed``, ``vary``, ``patience``.

    ``vary="split"`` (000: repeated shuffled splits): run r uses the split with
    seed ``seed + r`` (stratified by composition by default) and initial weights
    from seed ``seed + r``. ``vary="init"`` (001: an ensemble of independently
    initialised models): every run uses the split of ``seed`` and only the
    initial weights change. Within a run every combination gets the same split,
    so the combinations are compared on equal footing.

    Returns an :class:`ExperimentResult`: the rows of :func:`summarise_task_runs` (it is that
    list), with the :class:`TaskRun` list as ``result.runs``. ``return_runs=True`` (deprecated)
    returns ``(result, result.runs)`` as before.

    ``resume_file`` (a ``.jsonl`` path): every finished model's test predictions and history
    are appended there, and a rerun with the same data and options skips those models
    (:mod:`mlexplore.training.task_records`); their :class:`TaskRun` has ``model=None``.
    Hours-long comparisons (GraphNets on a CPU) survive an interruption that way.

    ``vectorise``: train the ``n_runs`` models of each combination together as one vectorised
    ensemble (:func:`~mlexplore.training.ensemble.fit_task_members`; lattice models only). Each
    model is the one it would be alone, to float rounding; the time of a run is then the
    group's time divided by ``n_runs``. Default: on a CUDA device, where one small model
    leaves the GPU idle between kernel launches (4 runs of the CuAu comparison together:
    2.9× faster per model-epoch on an H100).

    ``executor``: where the models are trained (:func:`run_experiment`): None here, or a Dask
    cluster (a ``distributed.Client``, ``"tcp://host:8786"``, ``"local"``), one task per model (per
    vectorised group), with the same table; finished models are recorded in ``resume_file`` as
    they arrive.
    """
    plan = plan_task_comparison(dataset, targets, combinations, model, n_runs, **options)
    result = run_experiment(plan, resume_file=resume_file, vectorise=vectorise, progress=progress,
                            desc="STL/MTL runs", executor=executor)
    return deprecated_runs_pair(result, "compare_tasks") if return_runs else result


_with_options_signature(compare_tasks, TaskComparisonOptions)


def task_table_cells(rows: Sequence[dict]) -> tuple[list[str], list[tuple[str, list[dict | None], float]]]:
    """The layout of 001 table 1 from :func:`summarise_task_runs` rows: the targets (columns) and,
    per task combination (``"a+b"``, a line), its row of each target (None where it does not predict
    it) and its mean training time (s). The text and markdown tables both print this."""
    targets = list(dict.fromkeys(r["target"] for r in rows))
    cell = {(r["tasks"], r["target"]): r for r in rows}
    table = []
    for c in dict.fromkeys(r["tasks"] for r in rows):
        secs = next(r["seconds_mean"] for r in rows if r["tasks"] == c)
        table.append((c, [cell.get((c, t)) for t in targets], secs))
    return targets, table


def format_task_table(rows: list[dict]) -> str:
    """The comparison as a text table in the layout of 001 table 1 (one column per target)."""
    targets, table = task_table_cells(rows)
    width = max(12, *(len(c) for c, _, _ in table))
    lines = [f"{'model':<{width}} " + " ".join(f"{t + ' RMSE (mean ± std)':>30}" for t in targets)
             + f" {'time s':>8}"]
    for c, cells, secs in table:
        parts = [f"{r['rmse_mean']:>16.4g} ± {r['rmse_std']:<11.2g}" if r else f"{'-':>30}" for r in cells]
        lines.append(f"{run_label(c):<{width + 4}}" + " ".join(parts) + f" {secs:8.2f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- bag of models
@dataclass
class BagRun:
    """One model of a bag: its number, seed, validation rows (positions in the dataset), the
    validation references and predictions (the target's units), its predictions for every
    structure, and its training time (s)."""

    run: int
    seed: int
    validation_ids: np.ndarray
    reference: np.ndarray
    predicted: np.ndarray
    predictions: np.ndarray
    seconds: float
    variant: str = "bag"

    def errors(self, target: str | None = None) -> np.ndarray:
        """Validation errors (predicted − reference); ``target`` is ignored (a bag has one)."""
        return self.predicted - self.reference


@dataclass
class BagOfModelsPlan(ExperimentPlan):
    """A bag (002 §4.2.1): model m trained on the random split of seed ``seed + m``
    (``1 − val_fraction`` / ``val_fraction``) by ``train_and_predict(train, val, seed)``."""

    dataset: StructureDataset
    train_and_predict: Callable[[StructureDataset, StructureDataset, int], Callable[[StructureDataset], np.ndarray]]
    n_models: int = 5
    val_fraction: float = 0.2
    seed: int = 0
    target: Callable[[StructureDataset], np.ndarray] | None = None
    jobs: list[tuple[int, str]] = field(init=False)

    def __post_init__(self) -> None:
        if self.n_models < 1:
            raise InputError("n_models must be ≥ 1", field="n_models")
        if not 0 < self.val_fraction < 1:
            raise InputError(f"val_fraction must lie in (0, 1), got {self.val_fraction}", field="val_fraction")
        self.target = self.target or (lambda d: d.label("energy") / d.n_atoms)
        self.jobs = [(m, "bag") for m in range(self.n_models)]

    def reference(self) -> np.ndarray:
        """The target of every structure."""
        return np.asarray(self.target(self.dataset), dtype=float)

    def run(self, job: int, callback=None) -> BagRun:
        m = self.jobs[job][0]
        train, val = random_split(self.dataset, (1 - self.val_fraction, self.val_fraction), seed=self.seed + m)
        t0 = time.perf_counter()
        predict = self.train_and_predict(train, val, self.seed + m)
        seconds = time.perf_counter() - t0
        p_all = np.asarray(predict(self.dataset), dtype=float)
        position = {int(i): k for k, i in enumerate(self.dataset.ids)}
        rows = np.array([position[int(i)] for i in val.ids])
        y = self.reference()
        return BagRun(run=m, seed=self.seed + m, validation_ids=rows, reference=y[rows], predicted=p_all[rows],
                      predictions=p_all, seconds=seconds)

    def summarise(self, runs: Sequence[BagRun]) -> list[dict]:
        if not runs:
            return []
        reports = [regression_report(r.reference, r.predicted) for r in runs]
        row: dict[str, Any] = {"variant": "bag", "n_runs": len(runs)}
        for k in ("rmse", "mae", "r2"):
            v = np.array([x[k] for x in reports])
            row[f"{k}_mean"], row[f"{k}_std"] = float(v.mean()), float(v.std())
        s = self.summary(runs)
        row["aggregate_rmse"] = s["aggregate"]["rmse"]
        row["concatenated_rmse"] = s["concatenated_validation"]["rmse"]
        row["seconds_mean"] = float(np.mean([r.seconds for r in runs]))
        return [row]

    def summary(self, runs: Sequence[BagRun]) -> dict[str, Any]:
        if not runs:
            return {}
        preds = np.array([r.predictions for r in runs])
        return {
            "aggregate": regression_report(self.reference(), preds.mean(axis=0)),
            "concatenated_validation": regression_report(np.concatenate([r.reference for r in runs]),
                                                         np.concatenate([r.predicted for r in runs])),
            "per_model": [regression_report(r.reference, r.predicted) for r in runs],
            "predictions": preds,
            "validation_ids": [r.validation_ids for r in runs],
        }

    def _cells(self, rows):
        return [[f"bag of {r['n_runs']}", f"{r['rmse_mean']:.4g} ± {r['rmse_std']:.2g}",
                 f"{r['mae_mean']:.4g} ± {r['mae_std']:.2g}", f"{r['r2_mean']:.4f} ± {r['r2_std']:.2g}",
                 f"{r['aggregate_rmse']:.4g}", f"{r['concatenated_rmse']:.4g}"] for r in rows]

    _HEADER = ["models", "validation RMSE", "MAE", "R²", "bag-mean RMSE", "pooled RMSE"]

    def format_table(self, rows: Sequence[dict]) -> str:
        cells = [self._HEADER, *self._cells(rows)]
        widths = [max(len(c[k]) for c in cells) for k in range(len(self._HEADER))]
        return "\n".join("  ".join(c[k].rjust(widths[k]) for k in range(len(c))) for c in cells)

    def markdown(self, rows: Sequence[dict]) -> str:
        return markdown_table(self._HEADER, self._cells(rows))


def bag_of_models(dataset: StructureDataset, train_and_predict: Callable[[StructureDataset, StructureDataset, int],
                                                                        Callable[[StructureDataset], np.ndarray]],
                  n_models: int = 5, val_fraction: float = 0.2, seed: int = 0,
                  target: Callable[[StructureDataset], np.ndarray] | None = None,
                  progress: bool = False, executor: ExecutorLike = None) -> ExperimentResult:
    """Train ``n_models`` models, each on its own random split (002 §4.2.1), and score the bag.

    Parameters
    ----------
    train_and_predict:
        ``(train, val, seed) -> predict`` where ``predict(dataset)`` returns one
        value per structure (same quantity as ``target``).
    target:
        Reference values per structure; default energy per atom (eV/atom).
    executor:
        Where the models are trained (:func:`run_experiment`): None here; a Dask cluster (a
        ``distributed.Client``, ``"tcp://…"``, ``"local"``) one model per task, which needs
        ``train_and_predict`` and ``target`` that can be pickled (cloudpickle takes lambdas).

    Returns
    -------
    An :class:`ExperimentResult` (:class:`BagOfModelsPlan`): one row (validation RMSE/MAE/R² mean ±
    std over the models), the :class:`BagRun` list as ``runs``, and, read as before with
    ``result[key]``: ``aggregate``: metrics of the mean prediction over all models for every
    structure; ``concatenated_validation``: metrics of every model's validation predictions
    pooled; ``per_model``: each model's validation metrics; ``predictions``: array
    ``(n_models, n_structures)``; ``validation_ids``: each model's validation structure indices.
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    plan = BagOfModelsPlan(dataset, train_and_predict, n_models=n_models, val_fraction=val_fraction, seed=seed,
                           target=target)
    return run_experiment(plan, progress=progress, desc="bag of models", executor=executor)
