"""Round trips through every writer and reader keep every label the format can hold."""

import warnings

import numpy as np
import pytest
from ase.units import Rydberg

from mlexplore import StructureDataset
from mlexplore.io import load_cache, read, read_lsms, read_n2p2, write, write_lsms, write_n2p2


def assert_same(a: StructureDataset, b: StructureDataset, labels=None, exact=True):
    cmp = np.testing.assert_array_equal if exact else (lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-13))
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_array_equal(a.n_atoms, b.n_atoms)
    cmp(a.positions, b.positions)
    cmp(a.cells, b.cells)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    for name in labels if labels is not None else a.label_names:
        assert name in b, name
        assert a.label(name).shape == b.label(name).shape, name
        cmp(a.label(name), b.label(name))


@pytest.mark.parametrize("suffix", [".extxyz", ".xyz.gz", ".npz"])
def test_lossless_formats_are_bit_for_bit(small_dataset, tmp_path, suffix):
    path = tmp_path / f"set{suffix}"
    small_dataset.save(path)
    back = StructureDataset.load(path)
    assert set(back.label_names) == set(small_dataset.label_names)
    assert_same(small_dataset, back)
    assert back.tags == small_dataset.tags
    assert back.meta == small_dataset.meta and back.meta[1]["source"] == "42"
    np.testing.assert_array_equal(back.ids, small_dataset.ids)


def test_gzipped_files_are_reproducible(small_dataset, tmp_path):
    """Saving the same data twice, at different times, gives the same bytes (no time stamp or
    temporary name in the gzip header), so regenerated package data does not churn in git."""
    import gzip
    import time

    a, b = tmp_path / "a.xyz.gz", tmp_path / "b.xyz.gz"
    small_dataset.save(a)
    time.sleep(1.05)  # gzip's default header time stamp has one-second resolution
    small_dataset.save(b)
    assert a.read_bytes() == b.read_bytes()
    with gzip.open(a) as fh:  # a valid gzip stream that any reader opens
        assert fh.read().decode().startswith(f"{small_dataset.n_atoms[0]}\n")


def test_extxyz_subset_keeps_ids_and_is_readable_by_ase(small_dataset, tmp_path):
    from ase.io import read as ase_read

    path = tmp_path / "sub.xyz"
    write(small_dataset[[2, 3]], path)
    assert read(path).ids.tolist() == [2, 3]
    images = ase_read(path, ":")
    assert images[0].get_potential_energy() == small_dataset[2].get_potential_energy()


def test_cache_of_generated_alloy(tmp_path):
    from mlexplore.datasets import lattice_alloy

    ds = lattice_alloy(n_per_composition=2, progress=False, cache=False)
    write(ds, tmp_path / "c.npz")
    assert_same(ds, load_cache(tmp_path / "c.npz"))


def test_n2p2_round_trip(small_dataset, tmp_path):
    path = tmp_path / "input.data"
    small_dataset.add_label("charges", np.linspace(-1, 1, 32))
    with pytest.warns(UserWarning, match="cannot hold"):
        write_n2p2(small_dataset, path)
    back = read(path)
    assert_same(small_dataset, back, labels=["energy", "forces", "charges"])
    assert back.tags == small_dataset.tags and back.meta == small_dataset.meta
    np.testing.assert_array_equal(back.label("charge"), 0.0)


def test_n2p2_units_conversion(small_dataset, tmp_path):
    from ase.units import Bohr, Hartree

    path = tmp_path / "input.data"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_n2p2(small_dataset, path, units="hartree-bohr")
    text = path.read_text()
    e0 = small_dataset.label("energy")[0]
    assert f"energy {float(e0) / Hartree!r}" in text
    back = read_n2p2(path, units="hartree-bohr")
    np.testing.assert_allclose(back.positions, small_dataset.positions, rtol=1e-14)
    np.testing.assert_allclose(back.label("energy"), small_dataset.label("energy"), rtol=1e-14)
    assert Bohr < 1


def _lsms_dataset():
    rng = np.random.default_rng(3)
    cell = np.diag([5.6, 5.6, 5.6])
    n = 3
    base = np.array([[0, 0, 0], [2.8, 2.8, 2.8], [2.8, 0, 0], [0, 2.8, 2.8]], float)
    numbers = np.array([[26, 26, 26, 26], [26, 78, 26, 78], [78, 78, 78, 78]])
    charges = numbers + rng.normal(0, 0.2, numbers.shape)
    moments = np.where(numbers == 26, 2.7, 0.3) + rng.normal(0, 0.05, numbers.shape)
    return StructureDataset(
        numbers=numbers.ravel(), positions=np.tile(base, (n, 1)) + rng.normal(0, 0.01, (12, 3)),
        cells=np.broadcast_to(cell, (n, 3, 3)), pbc=np.ones((n, 3), bool), n_atoms=[4] * n,
        structure_labels={"energy": np.array([-4 * 100.1, -2 * 100.1 - 2 * 200.3 - 0.4, -4 * 200.3])},
        atom_labels={"charges": charges.ravel(), "magmoms": moments.ravel()})


def test_lsms_round_trip_energies_in_ev_and_charge_transfer(tmp_path):
    ds = _lsms_dataset()
    paths = write_lsms(ds, tmp_path / "lsms")
    # the energy line is in Rydberg
    first = float(paths[0].read_text().split()[0])
    assert first == pytest.approx(-400.4 / Rydberg, rel=1e-15)
    back = read_lsms(tmp_path / "lsms", cell=ds.cells[0], references="auto")
    assert_same(ds, back, labels=["energy", "charges", "magmoms"], exact=False)
    np.testing.assert_allclose(back.label("charge_transfer"), ds.label("charges") - ds.numbers, atol=1e-13)
    mix = back.label("mixing_energy")
    assert mix[0] == pytest.approx(0, abs=1e-12) and mix[2] == pytest.approx(0, abs=1e-12)
    assert mix[1] == pytest.approx(-0.1, abs=1e-9)  # -0.4 eV over 4 atoms
    assert [m["source"] for m in back.meta] == [p.name for p in paths]


def test_lsms_single_file_bohr_and_explicit_references(tmp_path):
    from ase.units import Bohr

    f = tmp_path / "one.txt"
    f.write_text("-1.5 extra fields ignored\n26 0 0 0 0 26.1 2.2\n78 1 2 2 2 77.8 0.3\n")
    ds = read_lsms(f, length_unit="bohr", references={"Fe": -10.0, "Pt": -11.0})
    assert ds.label("energy")[0] == pytest.approx(-1.5 * Rydberg)
    np.testing.assert_allclose(ds.positions[1], [2 * Bohr] * 3)
    np.testing.assert_allclose(ds.label("charge_transfer"), [0.1, -0.2], atol=1e-12)
    assert ds.label("mixing_energy")[0] == pytest.approx(-1.5 * Rydberg / 2 + 10.5)
    assert not ds.pbc.any()


def test_lsms_atom_order_follows_index_column(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("-1.0\n78 1 2 2 2 78 0.3\n26 0 0 0 0 26 2.2\n")
    ds = read_lsms(f)
    assert ds.numbers.tolist() == [26, 78]


def test_natural_order_of_lsms_directory(tmp_path):
    for i in (10, 2, 1):
        (tmp_path / f"c{i}.txt").write_text(f"{-i}.0\n26 0 0 0 0 26 2.2\n")
    ds = read_lsms(tmp_path)
    assert [m["source"] for m in ds.meta] == ["c1.txt", "c2.txt", "c10.txt"]


def test_ase_formats_through_read(tmp_path, small_dataset):
    path = tmp_path / "POSCAR"
    write(small_dataset[[0]], path, format="vasp")
    back = read(path, format="vasp")
    np.testing.assert_allclose(back.positions, small_dataset[[0]].positions, atol=1e-7)
