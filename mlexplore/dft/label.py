"""Label structures with DFT (GPAW): resumable, one record per configuration."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..data.dataset import StructureDataset
from ..errors import InputError
from ..execution import ExecutorLike, executor_scope
from .records import PendingWork, append_record, latest_records, read_records, records_to_dataset
from .settings import DFTSettings

__all__ = ["label", "gpaw_calculator", "failed_records", "pattern_kept", "set_smearing"]

CalculatorFactory = Callable[[DFTSettings, Atoms, tuple, Any], Any]


def _require_gpaw() -> None:
    """Raise a clear ImportError when GPAW is missing."""
    try:
        import gpaw  # noqa: F401
    except ImportError as exc:
        raise ImportError("GPAW is not installed: install the extra mlexplore[dft] with "
                          "scripts/install_gpaw.sh (Debian libxc/openblas/fftw + GPAW's build config)") from exc


def gpaw_calculator(settings: DFTSettings, atoms: Atoms, kpts: tuple, txt: Any = None):
    """A GPAW plane-wave calculator for ``settings`` (needs ``mlexplore[dft]``, see
    ``scripts/install_gpaw.sh``)."""
    _require_gpaw()
    if settings.noncollinear:
        return _noncollinear_calculator(settings, atoms, kpts, txt)
    from gpaw import GPAW, PW, FermiDirac

    extra = {}
    if settings.mixer is not None:
        from gpaw.mixer import Mixer, MixerDif, MixerSum

        m = dict(settings.mixer)
        cls = {"dif": MixerDif, "sum": MixerSum, "plain": Mixer}[m.pop("kind", "dif")]
        extra["mixer"] = cls(**m)
    return GPAW(mode=PW(settings.ecut), xc=settings.xc, kpts=list(kpts),
                occupations=FermiDirac(settings.smearing), spinpol=settings.spinpol,
                maxiter=settings.maxiter, txt=txt, legacy_gpaw=True, **extra)


def _noncollinear_calculator(settings: DFTSettings, atoms: Atoms, kpts: tuple, txt: Any = None):
    """GPAW's self-consistent non-collinear plane-wave calculator (LDA, no symmetry), seeded with
    ``atoms``' 3-vector initial moments and, with ``settings.direction_penalty``, each atom's
    moment held along its seed by :class:`gpaw.new.constraints.SpinDirectionConstraint`."""
    from gpaw.new.ase_interface import GPAW

    seeds = np.asarray(atoms.get_initial_magnetic_moments(), dtype=float).reshape(len(atoms), 3)
    extra = {}
    if settings.direction_penalty is not None:
        from gpaw.new.constraints import SpinDirectionConstraint

        norms = np.linalg.norm(seeds, axis=1)
        if np.any(norms < 1e-8):
            raise InputError(f"a direction constraint needs a non-zero seed on every atom; atoms "
                             f"{np.flatnonzero(norms < 1e-8).tolist()} have none", field="initial_magmoms")
        extra["extensions"] = [SpinDirectionConstraint({a: (seeds[a] / norms[a]).tolist() for a in range(len(atoms))},
                                                       settings.direction_penalty)]
    return GPAW(mode={"name": "pw", "ecut": settings.ecut}, xc=settings.xc, kpts=list(kpts),
                occupations={"name": "fermi-dirac", "width": settings.smearing}, symmetry="off",
                magmoms=seeds.tolist(), maxiter=settings.maxiter, txt=txt, **extra)


def set_smearing(calc, width: float) -> None:
    """Change the Fermi-Dirac width (eV) of a calculator, keeping its density and wave functions
    (GPAW's ``calc.set(occupations=…)``; any ASE calculator whose ``set`` takes ``occupations``)."""
    calc.set(occupations={"name": "fermi-dirac", "width": float(width)})


def _is_convergence_error(error: str) -> bool:
    """Does an error text (``"Type: message"``) say the SCF did not converge?"""
    return "converge" in error.lower()


def _hirshfeld_charges(calc) -> np.ndarray:
    from gpaw.analyse.hirshfeld import HirshfeldPartitioning

    return np.asarray(HirshfeldPartitioning(calc).get_charges(), dtype=float)


def _as_images(data: StructureDataset | Atoms | Iterable[Atoms]) -> list[Atoms]:
    if isinstance(data, StructureDataset):
        images = []
        for i in range(len(data)):
            atoms = data.get_atoms(i)
            atoms.calc = None
            if "initial_magmoms" in data.atom_labels:
                atoms.set_initial_magnetic_moments(data.atom_labels["initial_magmoms"][data.atom_slice(i)])
            images.append(atoms)
        return images
    if isinstance(data, Atoms):
        return [data]
    images = list(data)
    for i, a in enumerate(images):
        if not isinstance(a, Atoms):
            raise InputError(f"expected ase.Atoms, got {type(a).__name__}", structure=i)
    return images


def _compute(atoms: Atoms, settings: DFTSettings, factory: CalculatorFactory, kpts: tuple,
             magmoms: np.ndarray, txt: Any, warmup_smearing: float | None = None) -> dict:
    """One configuration. With ``warmup_smearing`` the SCF first converges at that wider
    Fermi-Dirac width and then goes on from its density at ``settings.smearing``: every
    number returned is at ``settings``, only the starting point of the last SCF differs."""
    work = atoms.copy()
    work.calc = None
    work.set_initial_magnetic_moments(magmoms)
    if warmup_smearing is None:
        calc = factory(settings, work, kpts, txt)
        work.calc = calc
    else:
        calc = factory(dataclasses.replace(settings, smearing=warmup_smearing), work, kpts, txt)
        work.calc = calc
        work.get_potential_energy()
        set_smearing(calc, settings.smearing)
    result: dict[str, Any] = {}
    result["energy"] = float(work.get_potential_energy())
    result["forces"] = work.get_forces()
    if work.pbc.all() and not settings.noncollinear:  # GPAW 26.7 has no non-collinear stress
        result["stress"] = work.get_stress(voigt=True)
    if settings.noncollinear:  # (N, 3) local moments; the total's length
        result["magmoms"] = np.asarray(calc.get_non_collinear_magnetic_moments(), dtype=float).reshape(-1, 3)
        result["magmom"] = float(np.linalg.norm(calc.get_non_collinear_magnetic_moment()))
    elif settings.spinpol:
        result["magmoms"] = np.asarray(work.get_magnetic_moments(), dtype=float)
        result["magmom"] = float(work.get_magnetic_moment())
    else:
        result["magmoms"] = np.zeros(len(work))
        result["magmom"] = 0.0
    result["charges"] = _hirshfeld_charges(calc) if settings.hirshfeld else None
    return result


def _label_configuration(record: dict[str, Any], atoms: Atoms, settings: DFTSettings, factory: CalculatorFactory,
                         log_dir: str | None, rescue_smearing: float | None, first_error: str | None
                         ) -> dict[str, Any]:
    """One task of :func:`label`: compute one configuration and return its finished ``record``
    (``status`` ``"ok"`` with the labels, or ``"failed"`` with the error; ``seconds``).

    ``record`` holds the key, settings, k-points and initial moments (:func:`label` fills it);
    ``first_error``: the non-converged SCF of an earlier run, which sends it straight to the rescue.
    A pure function of its arguments: it runs the same in this process or on a Dask worker.
    """
    record = dict(record)
    key = record["key"]
    txt = None if log_dir is None else str(Path(log_dir) / f"{key}.txt")
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    args = (atoms, settings, factory, tuple(record["kpts"]), record["initial_magmoms"])
    try:
        first_error = first_error if rescue_smearing is not None else None
        if first_error is None:
            try:
                record.update(_compute(*args, txt))
            except Exception as exc:
                first_error = f"{type(exc).__name__}: {exc}"
                if rescue_smearing is None or not _is_convergence_error(first_error):
                    raise
        if first_error is not None:
            record["rescue"] = {"warmup_smearing": float(rescue_smearing), "first_error": first_error}
            rescue_txt = None if txt is None else str(Path(log_dir) / f"{key}_rescue.txt")
            record.update(_compute(*args, rescue_txt, warmup_smearing=rescue_smearing))
        record["status"] = "ok"
    except Exception as exc:  # one bad configuration must not stop the run
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=5)
    record["seconds"] = time.perf_counter() - t0
    return record


def label(
    data: StructureDataset | Atoms | Iterable[Atoms],
    out: str | os.PathLike,
    settings: DFTSettings | None = None,
    calculator: CalculatorFactory | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    log_dir: str | os.PathLike | None = None,
    rescue_smearing: float | None = None,
    reverse: bool = False,
    on_record: Callable[[dict], Any] | None = None,
    executor: ExecutorLike = None,
    threads: int | None = None,
) -> StructureDataset:
    """Compute DFT labels for every structure, resumably.

    Each finished configuration is appended to the record file ``out`` (JSON
    lines, see :mod:`mlexplore.dft.records`) with its settings, k-points and
    timing. Calling again with the same input skips what is already there, so
    a killed run resumes where it stopped without recomputing or duplicating.
    A configuration that raises (e.g. SCF not converged within
    ``settings.maxiter``) is recorded as failed with the error and the run
    goes on; failures are not retried unless ``retry_failed``, or unless
    ``rescue_smearing`` is given and they have not been rescued yet.

    Metallic magnets with competing orders (AFM or random collinear seeds in
    strained iron) sometimes make the SCF hop between near-degenerate spin
    states until ``maxiter``. With ``rescue_smearing`` (eV, e.g. 0.3) such a
    failure gets one more try that first converges at that wider smearing and
    then re-converges from its density at ``settings.smearing``. The result is
    a self-consistent solution at the run's settings, so it keeps the same
    record key; the record (and the dataset's ``meta``) says ``rescue`` with
    the first error. A configuration that failed that way in an earlier run
    goes straight to the warm-up (the same settings would fail the same way).
    It is not always the state the direct SCF would have found: weak moments
    can vanish at the wider smearing and stay zero (AFM Fe2 compressed to
    a = 2.80 Å ends non-magnetic), so look at the final ``magmoms``
    (:func:`pattern_kept`) of rescued records.

    Parameters
    ----------
    data:
        Structures; ``initial_magmoms`` (atoms' or a dataset label) seed the
        spin, else ``settings.magmoms`` per element. Tags and metadata of a
        dataset are kept in the records.
    out:
        Record file (``.jsonl``).
    settings:
        :class:`DFTSettings` (default: PBE, 350 eV, k-point density 1.8 Å).
    calculator:
        Factory ``(settings, atoms, kpts, txt) -> ASE calculator``; default
        GPAW (:func:`gpaw_calculator`). With a Dask executor it is pickled
        to the workers (a module-level function, or anything cloudpickle takes).
    log_dir:
        Folder for one GPAW text log per configuration (default: no logs). With
        a Dask executor the workers write there: a folder they all reach.
    rescue_smearing:
        Wider Fermi-Dirac width (eV) for the second try of a configuration
        whose SCF did not converge (default: no second try).
    reverse:
        Work from the last configuration to the first. Before each
        configuration the records that other processes appended to ``out``
        meanwhile are read, and what they finished is skipped; so two
        processes, one forward and one ``reverse``, share a set and meet in
        the middle (only a configuration both start at once is computed twice;
        the result has it once). In this process only: a cluster run
        (``executor``) shares the set among its workers instead.
    on_record:
        Called with each record (a dict: ``status``, ``index``, ``seconds``,
        the labels…) right after it is appended to ``out``, e.g. to export the
        growing set every few configurations while one progress bar (and its
        ETA) spans the whole run.
    executor:
        Where the configurations are computed
        (:func:`~mlexplore.execution.resolve_executor`): None, here one after
        the other; a Dask cluster (a ``distributed.Client``,
        ``"tcp://host:8786"``, ``"local"``), one task per configuration still
        to do, at the same time on the workers. This process appends each
        record to ``out`` as it arrives (in the order they finish), so a rerun
        after it died resumes from the records; a configuration is submitted
        once (a key listed twice is computed once). An executor made here is
        closed at the end.
    threads:
        OpenMP/BLAS threads of each configuration (GPAW's;
        :func:`~mlexplore.execution.thread_environment`). None: 1 on a Dask
        executor, the process's own setting here.

    Returns
    -------
    The successful configurations of ``data`` as a :class:`StructureDataset`
    in input order, with labels ``energy`` (eV), ``forces`` (eV/Å), ``stress``
    (eV/Å³), ``magmoms``/``magmom`` (μ_B), ``initial_magmoms`` (μ_B),
    ``charges`` (Hirshfeld Z − N_e, e) and ``charge_transfer`` (N_e − Z, e).
    """
    from tqdm.auto import tqdm

    settings = settings or DFTSettings()
    if calculator is None:
        _require_gpaw()  # before any record: a missing GPAW must not be recorded as failed configurations
    factory = calculator or gpaw_calculator
    images = _as_images(data)
    source = data if isinstance(data, StructureDataset) else None
    keys = [settings.key(a) for a in images]
    if rescue_smearing is not None and not rescue_smearing > settings.smearing:
        raise InputError(f"rescue_smearing ({rescue_smearing} eV) must be wider than the run's smearing "
                         f"({settings.smearing} eV)", field="rescue_smearing")
    def settled(r: dict) -> bool:  # needs no more work
        if r["status"] == "ok":
            return True
        if retry_failed:
            return False
        return rescue_smearing is None or "rescue" in r or not _is_convergence_error(r.get("error", ""))

    with executor_scope(executor) as ex:
        if reverse and not ex.in_process:
            raise InputError("reverse pairs two processes on one record file; a cluster run (executor) shares "
                             "the set among its workers instead", field="reverse")
        if threads is None and not ex.in_process:
            threads = 1  # explicit: one core per configuration, as each worker has one thread
        work = PendingWork(keys, out, settled, reverse=reverse)  # shared with a --reverse process
        # the same settings fail the same way: an earlier non-converged SCF goes straight to the rescue
        failed_before = {r["key"]: r["error"] for r in work.previous
                         if r["status"] == "failed" and "rescue" not in r and _is_convergence_error(r.get("error", ""))}
        folder = None if log_dir is None else str(log_dir)
        n_failed = 0
        with tqdm(total=len(images), initial=len(images) - len(work.todo), desc="DFT", unit="config",
                  disable=not progress) as bar:
            def tasks():
                for i, run in work:
                    if not run:  # another process finished it meanwhile, or it is listed twice
                        bar.update(1)
                        continue
                    atoms = images[i]
                    record: dict[str, Any] = {
                        "key": keys[i], "index": i, "settings": settings.to_dict(),
                        "numbers": atoms.numbers, "positions": atoms.positions, "cell": atoms.cell.array,
                        "pbc": atoms.pbc, "kpts": list(settings.kpts_for(atoms)),
                        "initial_magmoms": settings.initial_magmoms(atoms),
                        "tags": list(source.tags[i]) if source is not None else [],
                        "meta": dict(source.meta[i]) if source is not None else {},
                    }
                    yield i, (record, atoms, settings, factory, folder, rescue_smearing, failed_before.get(keys[i]))

            # (closing: an error here, e.g. in on_record, cancels the tasks still running)
            with contextlib.closing(ex.run(_label_configuration, tasks(), threads=threads)) as results:
                for i, record in results:
                    if record["status"] == "failed":
                        n_failed += 1
                        warnings.warn(f"DFT configuration {i} failed ({record['error']}); recorded in {out}",
                                      stacklevel=2)
                    append_record(out, record)
                    bar.update(1)
                    bar.set_postfix(failed=n_failed)
                    if on_record is not None:
                        on_record(record)
    by_key = latest_records(read_records(out))
    ordered = [by_key[k] for k in dict.fromkeys(keys) if k in by_key and by_key[k]["status"] == "ok"]
    if not ordered:
        raise InputError(f"no configuration succeeded; see the errors in {out}", path=out)
    name = Path(out).stem
    return records_to_dataset(ordered, name=name)


def failed_records(out: str | os.PathLike) -> list[dict]:
    """The configurations of a run that are failed now (their last record; a later
    success supersedes a failure): ``index``, ``key``, ``error``, ``traceback``."""
    return [r for r in latest_records(read_records(out)).values() if r["status"] == "failed"]


def failure_summary(out: str | os.PathLike, settings: DFTSettings | None = None) -> str:
    """One line per configuration of ``out`` that is failed now (with ``settings``: of that run's
    settings only, not another run's in the same file) and what to do about it; ``""`` when none."""
    failed = [r for r in failed_records(out) if settings is None or r.get("settings") == settings.to_dict()]
    if not failed:
        return ""
    return ("".join(f"  failed: structure {r['index']}: {r['error'].splitlines()[0]}\n" for r in failed)
            + "  (a rerun skips them; --retry-failed or --rescue-smearing 0.3 tries again)\n")


def pattern_kept(initial: np.ndarray, final: np.ndarray, threshold: float = 0.5) -> bool:
    """Did the SCF keep a collinear moment pattern?

    True when every atom that started with ``|m| > threshold`` (μ_B) still has
    ``|m| ≥ threshold`` with the same sign. (Atoms seeded with small moments,
    such as Pt, are free to follow.)
    """
    initial, final = np.asarray(initial, float), np.asarray(final, float)
    big = np.abs(initial) > threshold
    return bool(np.all((np.abs(final[big]) >= threshold) & (np.sign(final[big]) == np.sign(initial[big]))))
