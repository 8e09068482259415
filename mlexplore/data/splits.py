"""Train/validation/test splits of a :class:`StructureDataset`.

Every function is deterministic for a given ``seed`` and returns subsets of
the dataset (each subset keeps ``ids`` pointing back at the original
structures, so ``train.ids`` is the list of training indices).

- :func:`random_split` — shuffled fractions.
- :func:`stratified_split` — every composition represented in every part in
  the given fractions (001 §3: 70/15/15 stratified by composition).
- :func:`group_split` — leave the structures with a tag out (004 §3.5,
  e.g. train on bulk, test on surfaces).
- :func:`kfold` — k folds.
- :func:`shuffled_splits` — N repeated random splits with seeds
  ``seed, seed + 1, …`` (000 §3.4: 60 shuffled 90/10 splits).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import InputError, check_whole
from .dataset import StructureDataset

__all__ = ["random_split", "stratified_split", "group_split", "kfold", "shuffled_splits",
           "split_counts", "check_fractions", "check_seed"]


def check_fractions(fractions: Sequence[float]) -> np.ndarray:
    """``fractions`` as an array, checked: at least two numbers, finite, none negative, summing to 1."""
    if isinstance(fractions, (str, bytes)):
        raise InputError(f"fractions must be a sequence of numbers such as (0.8, 0.1, 0.1), got the text "
                         f"{fractions!r}", field="fractions")
    try:
        f = np.asarray(fractions, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"fractions must be numbers, got {fractions!r}", field="fractions") from None
    if f.ndim != 1 or len(f) < 2:
        raise InputError(f"fractions must list at least two parts, got {fractions!r}", field="fractions")
    if not np.isfinite(f).all() or (f < 0).any() or not np.isclose(f.sum(), 1.0, atol=1e-6):
        raise InputError(f"fractions must be non-negative and sum to 1, got {list(fractions)}",
                         field="fractions")
    return f / f.sum()


def check_seed(seed: Any, argument: str = "seed") -> int:
    """``seed`` as a whole number ≥ 0 (what numpy's and torch's generators take), or an
    :class:`InputError` naming the argument."""
    return check_whole(seed, argument, 0)


def split_counts(n: int, fractions: Sequence[float], at_least_one: bool = False) -> np.ndarray:
    """How many of ``n`` items go into each part (largest-remainder rounding).

    With ``at_least_one`` every part with a non-zero fraction gets one item
    when ``n`` allows it (taken from the largest part).
    """
    f = check_fractions(fractions)
    exact = f * n
    counts = np.floor(exact).astype(np.int64)
    # hand out what rounding left over, largest remainder first (ties: earlier part)
    order = np.lexsort((np.arange(len(f)), -(exact - counts)))
    counts[order[: n - counts.sum()]] += 1
    if at_least_one:
        wanted = np.flatnonzero(f > 0)
        if n >= len(wanted):
            for p in wanted:
                if counts[p] == 0:
                    donor = int(np.argmax(counts))
                    counts[donor] -= 1
                    counts[p] += 1
    return counts


#: what the parts of a split are called in messages, by their number
_PART_NAMES = {2: ("training", "validation"), 3: ("training", "validation", "test")}


def _check_nonempty(counts: np.ndarray, fractions: Sequence[float], n: int) -> None:
    """Refuse a split that leaves a part asked for (fraction > 0) without structures."""
    f = check_fractions(fractions)
    empty = [k for k in range(len(f)) if f[k] > 0 and counts[k] == 0]
    if empty:
        names = _PART_NAMES.get(len(f), tuple(f"part {k + 1}" for k in range(len(f))))
        parts = " and ".join(names[k] for k in empty)
        need = next((m for m in range(n + 1, 100_000) if split_counts(m, f)[f > 0].min() > 0), "more")
        raise InputError(f"fractions={tuple(float(x) for x in fractions)} of {n} structure(s) leave the {parts} "
                         f"set{'s' if len(empty) > 1 else ''} empty (sizes {counts.tolist()}): give at least {need} "
                         "structures, or a fraction of 0 for a part that may be empty", field="fractions")


def _cut(dataset: StructureDataset, order: np.ndarray, counts: np.ndarray) -> tuple[StructureDataset, ...]:
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return tuple(dataset.select(np.sort(order[bounds[k]:bounds[k + 1]])) for k in range(len(counts)))


def random_split(dataset: StructureDataset, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> tuple[StructureDataset, ...]:
    """Shuffle and cut into parts of the given fractions (e.g. train, val, test)."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    if len(dataset) == 0:
        raise InputError("cannot split an empty dataset")
    counts = split_counts(len(dataset), fractions)
    _check_nonempty(counts, fractions, len(dataset))
    rng = np.random.default_rng(check_seed(seed))
    order = rng.permutation(len(dataset))
    return _cut(dataset, order, counts)


def stratified_split(dataset: StructureDataset, fractions: Sequence[float] = (0.7, 0.15, 0.15),
                     seed: int = 0, by: str | Sequence = "composition") -> tuple[StructureDataset, ...]:
    """Split so that each group appears in every part in the given fractions.

    Parameters
    ----------
    by:
        ``"composition"`` (the chemical formula), ``"tag"`` (the first tag of
        each structure), or a sequence with one group key per structure.

    A group with fewer members than parts cannot be in all of them; its
    members go to the first parts (training first).
    """
    dataset = StructureDataset.coerce(dataset, "dataset")
    if len(dataset) == 0:
        raise InputError("cannot split an empty dataset")
    check_fractions(fractions)
    if isinstance(by, str):
        if by == "composition":
            keys = dataset.formulas
        elif by == "tag":
            keys = [t[0] if t else "" for t in dataset.tags]
        else:
            raise InputError(f"unknown stratification {by!r}: use 'composition', 'tag' or a list of keys",
                             field="by")
    else:
        keys = list(by)
        if len(keys) != len(dataset):
            raise InputError(f"{len(keys)} group keys for {len(dataset)} structures", field="by")
    _, group = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    rng = np.random.default_rng(check_seed(seed))
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for g in range(group.max() + 1):
        members = rng.permutation(np.flatnonzero(group == g))
        counts = split_counts(len(members), fractions, at_least_one=True)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        for k in range(len(fractions)):
            parts[k].append(members[bounds[k]:bounds[k + 1]])
    _check_nonempty(np.array([sum(len(x) for x in p) for p in parts]), fractions, len(dataset))
    return tuple(dataset.select(np.sort(np.concatenate(p))) for p in parts)


def group_split(dataset: StructureDataset, leave_out: str | Sequence[str]) -> tuple[StructureDataset, StructureDataset]:
    """(kept, left_out): structures with any of the ``leave_out`` tags form the second part."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    tags = [leave_out] if isinstance(leave_out, str) else list(leave_out)
    unknown = [t for t in tags if t not in dataset.all_tags]
    if unknown:
        raise InputError(f"tag(s) {unknown} do not occur in the dataset (tags: {dataset.all_tags})",
                         field="leave_out")
    return dataset.filter(exclude_tag=tags), dataset.filter(tag=tags)


def kfold(dataset: StructureDataset, k: int = 5, seed: int = 0) -> Iterator[tuple[StructureDataset, StructureDataset]]:
    """Yield ``k`` (train, validation) pairs; every structure is validated exactly once."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    if not 2 <= k <= len(dataset):
        raise InputError(f"k must be between 2 and the number of structures ({len(dataset)}), got {k}",
                         field="k")
    order = np.random.default_rng(check_seed(seed)).permutation(len(dataset))
    folds = np.array_split(order, k)
    for f in range(k):
        val = np.sort(folds[f])
        train = np.sort(np.concatenate([folds[g] for g in range(k) if g != f]))
        yield dataset.select(train), dataset.select(val)


def shuffled_splits(dataset: StructureDataset, n: int = 60, fractions: Sequence[float] = (0.9, 0.1),
                    seed: int = 0, stratify: bool = False) -> Iterator[tuple[StructureDataset, ...]]:
    """Yield ``n`` independent splits, the ``r``-th made with seed ``seed + r``."""
    dataset = StructureDataset.coerce(dataset, "dataset")
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}", field="n")
    for r in range(n):
        if stratify:
            yield stratified_split(dataset, fractions, seed=seed + r)
        else:
            yield random_split(dataset, fractions, seed=seed + r)
