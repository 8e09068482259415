import numpy as np
import pytest

from mlexplore import InputError
from mlexplore.data import group_split, kfold, random_split, shuffled_splits, split_counts, stratified_split
from mlexplore.datasets import gold, lattice_alloy


@pytest.fixture(scope="module")
def alloy():
    return lattice_alloy("CuAu", n_per_composition=8, progress=False)


def test_split_counts_sum_and_at_least_one():
    assert split_counts(10, (0.7, 0.15, 0.15)).tolist() == [7, 2, 1]
    assert split_counts(3, (0.7, 0.15, 0.15), at_least_one=True).tolist() == [1, 1, 1]
    assert split_counts(2, (0.7, 0.15, 0.15), at_least_one=True).sum() == 2
    with pytest.raises(InputError, match="sum to 1"):
        split_counts(10, (0.5, 0.4))


def test_random_split_partitions_and_is_deterministic(alloy):
    parts = random_split(alloy, (0.8, 0.1, 0.1), seed=3)
    ids = np.concatenate([p.ids for p in parts])
    assert sorted(ids.tolist()) == list(range(len(alloy)))
    assert [len(p) for p in parts] == split_counts(len(alloy), (0.8, 0.1, 0.1)).tolist()
    again = random_split(alloy, (0.8, 0.1, 0.1), seed=3)
    assert all(np.array_equal(a.ids, b.ids) for a, b in zip(parts, again))
    other = random_split(alloy, (0.8, 0.1, 0.1), seed=4)
    assert not np.array_equal(parts[0].ids, other[0].ids)


def test_stratified_split_keeps_every_composition_in_every_part(alloy):
    train, val, test = stratified_split(alloy, (0.7, 0.15, 0.15), seed=1)
    formulas = alloy.formulas
    counts = {f: formulas.count(f) for f in set(formulas)}
    for f, c in counts.items():
        if c >= 3:
            for part in (train, val, test):
                assert f in part.formulas, (f, c)
    # fractions per composition: 8 configurations → 6/1/1 (largest remainder, at least one each)
    f8 = next(f for f, c in counts.items() if c == 8)
    assert (train.formulas.count(f8), val.formulas.count(f8), test.formulas.count(f8)) == (6, 1, 1)
    assert len(train) + len(val) + len(test) == len(alloy)
    assert np.intersect1d(train.ids, test.ids).size == 0
    same = stratified_split(alloy, (0.7, 0.15, 0.15), seed=1)
    assert np.array_equal(same[1].ids, val.ids)


def test_stratified_by_custom_keys(alloy):
    keys = ["a" if i % 2 else "b" for i in range(len(alloy))]
    train, test = stratified_split(alloy, (0.5, 0.5), by=keys)
    assert abs(len(train) - len(test)) <= 2
    with pytest.raises(InputError, match="group keys"):
        stratified_split(alloy, (0.5, 0.5), by=["a"])


def test_group_split_leaves_tag_out():
    ds = gold(n_per_group=2, progress=False)
    kept, out = group_split(ds, "surface-111")
    assert len(out) == 2 and all(t == ("surface-111",) for t in out.tags)
    assert "surface-111" not in kept.all_tags and len(kept) == len(ds) - 2
    with pytest.raises(InputError, match="do not occur"):
        group_split(ds, "surface-110")


def test_kfold_validates_each_structure_once(alloy):
    seen = []
    for train, val in kfold(alloy, k=5, seed=0):
        assert np.intersect1d(train.ids, val.ids).size == 0
        assert len(train) + len(val) == len(alloy)
        seen.extend(val.ids.tolist())
    assert sorted(seen) == list(range(len(alloy)))


def test_shuffled_splits_differ_and_repeat(alloy):
    a = [p[1].ids for p in shuffled_splits(alloy, n=3, fractions=(0.9, 0.1), seed=7)]
    b = [p[1].ids for p in shuffled_splits(alloy, n=3, fractions=(0.9, 0.1), seed=7)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[1])
    strat = next(shuffled_splits(alloy, n=1, fractions=(0.7, 0.15, 0.15), stratify=True))
    assert len(strat) == 3


def test_empty_dataset_cannot_be_split(alloy):
    with pytest.raises(InputError, match="empty"):
        random_split(alloy[[]])
