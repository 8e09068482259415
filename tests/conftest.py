"""Shared fixtures. The dataset cache goes to a per-session temporary folder so
tests never read (or write) the user's ~/.cache/mlexplore."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MLEXPLORE_CACHE", str(tmp_path_factory.mktemp("mlexplore-cache")))
    yield
    mp.undo()


def labelled_images(n: int = 4, seed: int = 0):
    """Small CuAu cells with every kind of label: calculator results, info, arrays, 3-vector moments."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 2))
        a.numbers[rng.random(len(a)) < 0.4] = 79
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        a.calc = SinglePointCalculator(
            a, energy=float(rng.normal()) / 3, forces=rng.normal(size=(len(a), 3)) / 7,
            stress=rng.normal(size=6) / 11, magmoms=rng.normal(size=(len(a), 3)))
        a.info["mixing_energy"] = float(rng.normal()) / 13
        a.info["tags"] = "bulk" if i % 2 else "bulk rattled"
        a.arrays["charge_transfer"] = rng.normal(size=len(a)) / 17
        images.append(a)
    return images


@pytest.fixture
def small_dataset():
    from mlexplore import StructureDataset

    ds = StructureDataset.from_atoms(labelled_images(), name="small")
    ds.meta[1]["source"] = "42"  # a string that looks like a number must stay a string
    return ds


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a 2-core machine where another job holds a core, torch's
    OpenMP threads wait on each other and small tensor ops get 30× slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
