import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from conftest import labelled_images
from mlexplore import InputError, StructureDataset


def test_from_atoms_collects_every_label(small_dataset):
    ds = small_dataset
    assert len(ds) == 4 and ds.n_total_atoms == 32
    assert set(ds.structure_labels) >= {"energy", "stress", "mixing_energy"}
    assert set(ds.atom_labels) >= {"forces", "magmoms", "charge_transfer"}
    assert ds.label("magmoms").shape == (32, 3)
    assert ds.label("stress").shape == (4, 6)
    assert ds.tags[0] == ("bulk", "rattled") and ds.tags[1] == ("bulk",)


def test_get_atoms_gives_labels_back_through_ase(small_dataset):
    images = labelled_images()
    for i, ref in enumerate(images):
        a = small_dataset[i]
        assert isinstance(a, Atoms)
        assert a.get_potential_energy() == ref.get_potential_energy()
        np.testing.assert_array_equal(a.get_forces(), ref.get_forces())
        np.testing.assert_array_equal(a.get_magnetic_moments(), ref.calc.results["magmoms"])
        np.testing.assert_array_equal(a.arrays["charge_transfer"], ref.arrays["charge_transfer"])
        assert a.info["mixing_energy"] == ref.info["mixing_energy"]
        np.testing.assert_array_equal(a.positions, ref.positions)


def test_indexing_slicing_and_ids(small_dataset):
    sub = small_dataset[1:3]
    assert isinstance(sub, StructureDataset) and len(sub) == 2
    np.testing.assert_array_equal(sub.ids, [1, 2])
    np.testing.assert_array_equal(sub.label("forces"), small_dataset.label("forces")[8:24])
    picked = small_dataset[[3, 0]]
    np.testing.assert_array_equal(picked.ids, [3, 0])
    np.testing.assert_array_equal(picked.positions[:8], small_dataset.positions[24:32])
    assert small_dataset[-1].info["id"] == 3
    assert len(small_dataset[np.array([True, False, True, False])]) == 2
    with pytest.raises(IndexError):
        small_dataset[10]
    assert len(small_dataset[[]]) == 0


def test_filter_by_tag_formula_elements(small_dataset):
    assert len(small_dataset.filter(tag="rattled")) == 2
    assert len(small_dataset.filter(exclude_tag="rattled")) == 2
    f = small_dataset.formulas[0]
    assert all(x == f for x in small_dataset.filter(formula=f).formulas)
    assert len(small_dataset.filter(elements=["Cu", "Au"])) == 4
    assert len(small_dataset.filter(elements=["Cu"])) == sum(x.startswith("Cu") and "Au" not in x
                                                             for x in small_dataset.formulas)


def test_concatenate_and_dropped_labels(small_dataset):
    both = small_dataset + small_dataset
    assert len(both) == 8
    np.testing.assert_array_equal(both.ids, np.arange(8))  # duplicates renumbered
    other = small_dataset.copy()
    del other.atom_labels["magmoms"]
    with pytest.warns(UserWarning, match="magmoms"):
        joined = StructureDataset.concatenate([small_dataset, other])
    assert "magmoms" not in joined
    with pytest.raises(InputError, match="empty"):
        StructureDataset.concatenate([])


def test_missing_label_in_some_structures_is_dropped_with_warning():
    images = labelled_images(3)
    del images[1].arrays["charge_transfer"]
    with pytest.warns(UserWarning, match="charge_transfer"):
        ds = StructureDataset.from_atoms(images)
    assert "charge_transfer" not in ds and "forces" in ds


def test_summary_and_repr(small_dataset):
    text = small_dataset.summary()
    for word in ("structures", "4", "Au Cu".split()[0], "energy", "forces", "eV/Å", "rattled (2)"):
        assert word in text
    assert "4 structures" in repr(small_dataset)
    assert "<table>" in small_dataset._repr_html_()


def test_to_torch(small_dataset):
    t = small_dataset.to_torch(device="cpu", dtype=torch.float32)
    assert t["positions"].dtype == torch.float32 and t["positions"].shape == (32, 3)
    assert t["numbers"].dtype == torch.long
    assert t["batch"].tolist() == [0] * 8 + [1] * 8 + [2] * 8 + [3] * 8
    assert torch.allclose(t["energy"].double(), torch.as_tensor(small_dataset.label("energy")), atol=1e-6)
    only = small_dataset.to_torch(labels=["energy"])
    assert "forces" not in only and only["positions"].dtype == torch.get_default_dtype()


def test_add_label_checks_length(small_dataset):
    small_dataset.add_label("score", np.arange(4.0))
    assert not small_dataset.is_per_atom("score")
    small_dataset.add_label("site", np.arange(32.0))
    assert small_dataset.is_per_atom("site")
    with pytest.raises(InputError, match="'bad'.*5 values"):
        small_dataset.add_label("bad", np.arange(5.0))
    with pytest.raises(KeyError, match="not in the dataset"):
        small_dataset.label("nothing")


def test_per_structure_split_and_compositions(small_dataset):
    parts = small_dataset.per_structure("forces")
    assert len(parts) == 4 and all(p.shape == (8, 3) for p in parts)
    symbols, conc = small_dataset.concentrations()
    np.testing.assert_allclose(conc.sum(axis=1), 1.0)
    assert symbols == ["Cu", "Au"]


def test_constructor_rejects_inconsistent_shapes():
    with pytest.raises(InputError, match="n_atoms"):
        StructureDataset(numbers=[29, 29], positions=np.zeros((2, 3)), cells=np.zeros((1, 3, 3)),
                         pbc=np.zeros((1, 3)), n_atoms=[3])
    with pytest.raises(InputError, match="unknown element"):
        StructureDataset(numbers=[0, 29], positions=np.zeros((2, 3)), cells=np.zeros((1, 3, 3)),
                         pbc=np.zeros((1, 3)), n_atoms=[2])
    with pytest.raises(InputError, match="'energy'"):
        StructureDataset(numbers=[29], positions=np.zeros((1, 3)), cells=np.zeros((1, 3, 3)),
                         pbc=np.zeros((1, 3)), n_atoms=[1], structure_labels={"energy": [1.0, 2.0]})


def test_open_cluster_and_single_atoms():
    a = Atoms("Au2", positions=[[0, 0, 0], [0, 0, 2.5]])
    b = bulk("Au")
    ds = StructureDataset.from_atoms([a, b])
    assert ds.pbc.tolist() == [[False] * 3, [True] * 3]
    assert ds.summary().count("open") == 1
