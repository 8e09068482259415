"""Bad files at the reader boundary and torn record files (issue 20, first part): every failure is an
InputError naming the file, and an interrupted append loses nothing but the torn line."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from mlexplore import InputError
from mlexplore.io import append_line, read


def _random_bytes(n=4096, seed=0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("name", ["g.xyz", "input.data", "g.extxyz"])
def test_binary_data_in_a_text_format_is_named(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x80\x81" + _random_bytes())
    with pytest.raises(InputError, match="not UTF-8 text") as err:
        read(path)
    assert err.value.path == str(path) and str(path) in str(err.value)


def test_a_truncated_gzip_file_is_named(tmp_path, small_dataset):
    good = tmp_path / "d.xyz.gz"
    small_dataset.save(good)
    cut = tmp_path / "cut.xyz.gz"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(InputError, match="truncated") as err:
        read(cut)
    assert err.value.path == str(cut)


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2"])
def test_a_plain_file_named_as_compressed_is_named(tmp_path, suffix):
    path = tmp_path / f"plain.xyz{suffix}"
    path.write_text("2\nProperties=species:S:1:pos:R:3\nCu 0 0 0\nAu 0 0 2.5\n")
    with pytest.raises(InputError) as err:
        read(path)
    assert err.value.path == str(path) and type(err.value) is InputError


def test_a_cache_file_with_a_valid_header_and_a_missing_array(tmp_path, small_dataset):
    path = tmp_path / "d.npz"
    small_dataset.save(path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "numbers"}
    np.savez(path, **arrays)
    with pytest.raises(InputError, match="'numbers'") as err:
        read(path)
    assert err.value.path == str(path)
    arrays["header"] = np.array(json.dumps([1, 2]))
    np.savez(path, **arrays)
    with pytest.raises(InputError, match="header is a list"):
        read(path)


def test_random_bytes_never_escape_as_anything_but_input_error(tmp_path):
    """A seeded, bounded fuzz over the text readers: random bytes and random cuts of a valid file."""
    names = ["f.xyz", "f.xyz.gz", "input.data", "f.npz"]
    for seed in range(12):
        for name in names:
            path = tmp_path / name
            path.write_bytes(_random_bytes(512 + 97 * seed, seed))
            with pytest.raises(InputError):
                read(path)


def test_a_torn_last_record_line_is_dropped_before_the_next_append(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_line(path, json.dumps({"job": 0}))
    with open(path, "a") as fh:  # a kill in the middle of the second write
        fh.write('{"job": 1, "pred')
    append_line(path, json.dumps({"job": 2}))
    lines = path.read_text().splitlines()
    assert [json.loads(x)["job"] for x in lines] == [0, 2]


def test_compare_tasks_resumes_after_a_torn_record(tmp_path):
    from mlexplore.datasets import ising_lattice
    from mlexplore.training import compare_tasks

    ising = ising_lattice(L=3, n_per_composition=4, progress=False)
    record = tmp_path / "runs.jsonl"
    kw = dict(n_runs=2, epochs=2, device="cpu", progress=False, resume_file=record)
    first = compare_tasks(ising, ["energy"], **kw)
    text = record.read_text()
    record.write_text(text + text.splitlines()[0][:40])  # a torn third line
    again = compare_tasks(ising, ["energy"], **kw)  # reads both models back, appends nothing
    assert [r["rmse_mean"] for r in again] == [r["rmse_mean"] for r in first]
    more = compare_tasks(ising, ["energy"], **{**kw, "n_runs": 3})  # another plan: a new record after the torn one
    assert len(more.runs) == 3
    lines = record.read_text().splitlines()
    assert all(json.loads(x) for x in lines) and len(lines) == 2 + 3


def test_dft_records_share_the_same_append(tmp_path):
    from mlexplore.dft import append_record, read_records

    path = tmp_path / "run.jsonl"
    append_record(path, {"index": 0, "status": "ok"})
    with open(path, "a") as fh:
        fh.write('{"index": 1, "sta')
    append_record(path, {"index": 2, "status": "ok"})
    assert [r["index"] for r in read_records(path)] == [0, 2]


@pytest.mark.parametrize("edit, field, message", [
    (lambda c: c.replace(" energy=", " energy=abc"), "energy", "is not a number"),
    (lambda c: c + " energy=-9.0", "energy", "given twice"),
    (lambda c: c.replace("forces:R:3", "forces:R:2"), "forces", "3 per atom"),
    (lambda c: c.replace("forces:R:3", "forces:S:3"), "forces", "real numbers"),
    (lambda c: re.sub(r'stress="[^"]*"', 'stress="1 2 3"', c), "stress", "expected 6 or 9"),
    (lambda c: c + " ENERGY=1.0", "ENERGY", "given twice"),
    (lambda c: c.replace("mixing_energy=", "mixing_energy=1,"), "mixing_energy", "expected 1"),
])
def test_extxyz_labels_of_known_meaning_are_checked_on_read(tmp_path, small_dataset, edit, field, message):
    good = tmp_path / "good.xyz"
    small_dataset.save(good)
    lines = good.read_text().split("\n")
    assert "energy=" in lines[1] and "forces:R:3" in lines[1]
    lines[1] = edit(lines[1])
    bad = tmp_path / "bad.xyz"
    bad.write_text("\n".join(lines))
    with pytest.raises(InputError, match=message) as err:
        read(bad)
    assert err.value.path == str(bad) and err.value.line == 2 and err.value.field == field


def test_a_plain_xyz_comment_with_repeated_words_is_fine(tmp_path):
    path = tmp_path / "plain.xyz"
    path.write_text("2\nthe dimer of the gold, the end\nAu 0 0 0\nAu 0 0 2.6\n")
    assert len(read(path)) == 1


# --------------------------------------------------------------------------------------------
# Issue 20, second part: the rest of the reader boundary, the cache, structures and arguments
# given from Python, atomic writes, and a fuzz of mutated valid files.
# --------------------------------------------------------------------------------------------

import os
import signal
import subprocess
import sys
import time
import warnings
import zipfile

from ase.build import bulk

from mlexplore import StructureDataset
from mlexplore.io import load_cache, read_extxyz, read_lsms, read_n2p2, save_cache, write, write_extxyz, write_n2p2
from mlexplore.io.files import MAX_LINE_CHARS, atomic_write, clean_stale_temporaries

GOOD_XYZ = ('2\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 '
            'pbc="T T T"\nCu 0.0 0.0 0.0 0.1 0.0 0.0\nAu 2.0 2.0 2.0 -0.1 0.0 0.0\n')
GOOD_N2P2 = ("begin\ncomment mlexplore tags=bulk\nlattice 4 0 0\nlattice 0 4 0\nlattice 0 0 4\n"
             "atom 0 0 0 Cu 0 0 0.1 0 0\natom 2 2 2 Au 0 0 -0.1 0 0\nenergy -1.5\ncharge 0\nend\n")
GOOD_LSMS = "-100.5 0 0\n26 0 0.0 0.0 0.0 26.1 2.5\n78 1 1.4 1.4 1.4 77.9 0.3\n"


def _fails(call, *names, match=None, exc=InputError):
    """``call()`` raises exactly ``exc`` (not a subclass's cousin) whose message names each of
    ``names`` (a file, an argument) and matches ``match``; returns the error."""
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    for name in names:
        assert str(name) in msg, msg
    if match is not None:
        assert re.search(match, msg), msg
    return info.value


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ---- text readers: binary data, no line ends, NUL characters, wrong compression ---------------

@pytest.mark.parametrize("reader, name", [(read_extxyz, "g.xyz"), (read_n2p2, "input.data"),
                                          (read_lsms, "config.txt")])
def test_each_reader_called_directly_names_a_binary_file(tmp_path, reader, name):
    path = tmp_path / name
    path.write_bytes(b"\xff\xfe" + _random_bytes(2048, 7))
    err = _fails(lambda: reader(path), path, match="not UTF-8 text")
    assert err.path == str(path)


def test_an_lsms_directory_names_its_binary_file(tmp_path):
    (tmp_path / "a.txt").write_text(GOOD_LSMS)
    (tmp_path / "b.bin").write_bytes(b"\x89PNG\r\n\x1a\n" + _random_bytes(256, 3))
    err = _fails(lambda: read(tmp_path, format="lsms"), tmp_path / "b.bin", match="not UTF-8 text")
    assert err.path == str(tmp_path / "b.bin")


@pytest.mark.parametrize("fmt", ["extxyz", "n2p2", "lsms"])
def test_dev_zero_is_refused_without_filling_the_memory(fmt):
    err = _fails(lambda: read("/dev/zero", format=fmt), "/dev/zero", match="longer than")
    assert err.line == 1


@pytest.mark.parametrize("name", ["long.xyz", "input.data"])
def test_a_line_without_end_is_refused_at_the_limit(tmp_path, name):
    path = tmp_path / name
    path.write_text("1" * (MAX_LINE_CHARS + 10))
    _fails(lambda: read(path), path, match=f"longer than {MAX_LINE_CHARS}")


def test_nul_characters_mean_binary_data(tmp_path):
    path = tmp_path / "nul.xyz"
    path.write_text(GOOD_XYZ.replace("Cu 0.0", "Cu\x000.0"))
    err = _fails(lambda: read(path), path, match="NUL")
    assert err.line == 3


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_truncated_compressed_files_of_each_kind(tmp_path, small_dataset, suffix):
    good = tmp_path / f"d.xyz{suffix}"
    small_dataset.save(good)
    cut = tmp_path / f"cut.xyz{suffix}"
    cut.write_bytes(good.read_bytes()[:60])
    err = _fails(lambda: read(cut), cut)
    assert type(err) is InputError


def test_an_empty_file_of_each_text_format(tmp_path):
    for name, match in [("e.xyz", "no structures"), ("input.data", "no structures"), ("e.txt", "energy")]:
        path = tmp_path / name
        path.write_text("")
        _fails(lambda: read(path, format="lsms" if name == "e.txt" else None), path, match=match)


def test_a_directory_named_like_a_file_is_not_an_lsms_set_silently(tmp_path):
    folder = tmp_path / "data.xyz"
    folder.mkdir()
    _fails(lambda: read(folder), folder, match="no files")


# ---- extxyz and n2p2: metadata, repeated keys, widths -----------------------------------------

@pytest.mark.parametrize("meta, match", [('"{oops"', "not valid JSON"), ('"[1,2]"', "JSON object"),
                                         ("3", "JSON object"), ('"\\"text\\""', "JSON object")])
def test_extxyz_mlx_meta_must_be_a_json_object(tmp_path, meta, match):
    path = tmp_path / "m.xyz"
    path.write_text(GOOD_XYZ.replace('pbc="T T T"', f'pbc="T T T" mlx_meta={meta}'))
    err = _fails(lambda: read(path), path, match=match)
    assert err.line == 2 and err.field == "mlx_meta"


def test_mlx_meta_given_from_memory_names_the_structure():
    a, b = bulk("Cu"), bulk("Au")
    b.info["mlx_meta"] = "[1, 2]"
    err = _fails(lambda: StructureDataset.from_atoms([a, b]), "mlx_meta", match="JSON object")
    assert err.structure == 1


@pytest.mark.parametrize("edit, match, line", [
    (lambda t: t.replace("tags=bulk", 'tags=bulk meta={"a": 1'), "not valid JSON", 2),
    (lambda t: t.replace("tags=bulk", "tags=bulk meta=[1, 2]"), "JSON object", 2),
    (lambda t: t.replace("energy -1.5\n", "energy -1.5\nenergy -9.0\n"), "given twice", 9),
    (lambda t: t.replace("charge 0\n", "charge 0\ncharge 1\n"), "given twice", 10),
    (lambda t: t.replace("comment mlexplore tags=bulk\n", "comment a\ncomment b\n"), "given twice", 3),
    (lambda t: t.replace("energy -1.5", "energy abc"), "not a number", 8),
    (lambda t: t.replace("energy -1.5", "energy nan"), "non-finite", 8),
    (lambda t: t.replace("lattice 0 0 4\n", ""), "lattice", 1),
])
def test_n2p2_labels_are_checked_with_their_line(tmp_path, edit, match, line):
    path = tmp_path / "input.data"
    path.write_text(edit(GOOD_N2P2))
    err = _fails(lambda: read(path), path, match=match)
    assert err.line == line


def test_a_foreign_n2p2_comment_with_broken_json_is_kept_as_text(tmp_path):
    path = tmp_path / "input.data"
    path.write_text(GOOD_N2P2.replace("comment mlexplore tags=bulk", "comment from VASP meta={not json"))
    ds = read(path)
    assert ds.meta[0]["comment"].startswith("from VASP")


@pytest.mark.parametrize("column", ["magmoms:R:2", "velocities:R:1", "charges:R:3", "energies:S:1"])
def test_extxyz_known_columns_of_the_wrong_width_or_type(tmp_path, column):
    name, code, count = column.split(":")
    body = {"S": "Cu", "R": "0.5"}[code]
    atoms = [f"Cu 0.0 0.0 0.0 0.1 0.0 0.0 {' '.join([body] * int(count))}",
             f"Au 2.0 2.0 2.0 -0.1 0.0 0.0 {' '.join([body] * int(count))}"]
    text = GOOD_XYZ.split("\n")
    text[1] = text[1].replace("forces:R:3", f"forces:R:3:{column}")
    path = tmp_path / "w.xyz"
    path.write_text("\n".join(text[:2] + atoms) + "\n")
    err = _fails(lambda: read(path), path, match="per atom")
    assert err.field == name and err.line == 2


@pytest.mark.parametrize("key", ["virial", "free_energy", "mixing_energy"])
def test_extxyz_numeric_labels_of_each_kind(tmp_path, key):
    path = tmp_path / "v.xyz"
    path.write_text(GOOD_XYZ.replace("energy=-1.5", f"energy=-1.5 {key}=text"))
    err = _fails(lambda: read(path), path, match="not a number")
    assert err.field == key


def test_an_atom_count_larger_than_the_file_is_not_allocated(tmp_path):
    path = tmp_path / "big.xyz"
    path.write_text(GOOD_XYZ.replace("2\n", "900000000000\n", 1))
    _fails(lambda: read(path), path, match="file ends after 2 of 900000000000")


# ---- the binary cache ---------------------------------------------------------------------------

def _cache_arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("damage, match", [
    (lambda a: a.update(positions=a["positions"] + 0.01), "content hash"),
    (lambda a: a["positions"].__setitem__((1, 2), np.nan), "non-finite value in atom 1"),
    (lambda a: a.update(positions=a["positions"].astype(np.int64)), "'positions' is int64"),
    (lambda a: a.update(cells=a["cells"][:, :2]), "'cells'"),
    (lambda a: a.update(pbc=a["pbc"].astype(float)), "'pbc'"),
    (lambda a: a.update(n_atoms=a["n_atoms"][:-1]), "expected float of shape \\(3, 3, 3\\)"),
    (lambda a: a.update(header=np.array("{not json")), "not valid JSON"),
    (lambda a: a.update(header=np.array(json.dumps({"format": "other"}))), "format 'other'"),
    (lambda a: a.update(header=np.array(json.dumps({"format": "mlexplore-dataset", "version": 99}))), "newer"),
    (lambda a: a.pop("ids"), "'ids'"),
])
def test_a_damaged_cache_file_is_named_on_read(tmp_path, small_dataset, damage, match):
    path = tmp_path / "d.npz"
    save_cache(small_dataset, path)
    arrays = _cache_arrays(path)
    damage(arrays)
    np.savez(path, **arrays)
    err = _fails(lambda: read(path), path, match=match)
    assert err.path == str(path)


def test_the_cache_hash_is_recorded_and_checked(tmp_path, small_dataset):
    path = tmp_path / "d.npz"
    save_cache(small_dataset, path)
    header = json.loads(str(_cache_arrays(path)["header"]))
    assert header["version"] == 2 and len(header["sha256"]) == 64
    arrays = _cache_arrays(path)
    arrays["s:energy"] = arrays["s:energy"] + 1e-12  # a label changed by one ulp is caught too
    np.savez(path, **arrays)
    _fails(lambda: load_cache(path), path, match="content hash")


def test_a_version_1_cache_without_a_hash_still_reads(tmp_path, small_dataset):
    path = tmp_path / "d.npz"
    save_cache(small_dataset, path)
    arrays = _cache_arrays(path)
    header = json.loads(str(arrays["header"]))
    del header["sha256"]
    header["version"] = 1
    arrays["header"] = np.array(json.dumps(header))
    np.savez(path, **arrays)
    assert np.array_equal(load_cache(path).positions, small_dataset.positions)


def test_a_cache_member_claiming_more_than_it_holds(tmp_path, small_dataset):
    path = tmp_path / "d.npz"
    save_cache(small_dataset, path)
    crafted = tmp_path / "crafted.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(crafted, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "positions.npy":  # claim 10^12 atoms in the header, keep the bytes
                data = data.replace(b"'shape': (32, 3)", b"'shape': (1000000000000, 3)")
                assert b"1000000000000" in data
            dst.writestr(info.filename, data)
    _fails(lambda: read(crafted), crafted, match="claims 24000000000000 bytes")


def test_a_pickled_object_array_in_a_cache_is_refused(tmp_path, small_dataset):
    path = tmp_path / "d.npz"
    save_cache(small_dataset, path)
    arrays = _cache_arrays(path)
    arrays["s:evil"] = np.array([{"x": 1}] * len(small_dataset), dtype=object)
    np.savez(path, **arrays)
    _fails(lambda: read(path), path, match="objects")


def test_a_damaged_built_in_cache_is_rebuilt_and_says_so(tmp_path, monkeypatch):
    from mlexplore.datasets.cache import cache_dir, cached

    monkeypatch.setenv("MLEXPLORE_CACHE", str(tmp_path / "cache"))
    builds = []

    def build():
        builds.append(1)
        return StructureDataset.from_atoms([bulk("Cu", cubic=True)])

    first = cached("toy", {"n": 1}, build)
    (stored,) = list(cache_dir().glob("toy-*.npz"))
    arrays = _cache_arrays(stored)
    del arrays["numbers"]
    np.savez(stored, **arrays)  # the KeyError of issue 20: broke every call until deleted by hand
    with pytest.warns(UserWarning, match="damaged and is rebuilt"):
        again = cached("toy", {"n": 1}, build)
    assert len(builds) == 2 and np.array_equal(again.positions, first.positions)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file is sound: read back in silence
        cached("toy", {"n": 1}, build)
    assert len(builds) == 2


# ---- structures from Python: every writer and splitter takes a dataset, an Atoms or a list ------

def _labelled(n=3):
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for k in range(n):
        a = bulk("Cu", cubic=True)
        a.rattle(0.02, seed=k)
        a.calc = SinglePointCalculator(a, energy=-3.5 - k / 10, forces=np.zeros((len(a), 3)))
        out.append(a)
    return out


@pytest.mark.parametrize("name, writer", [
    ("input.data", write_n2p2), ("d.xyz", write_extxyz), ("d.npz", save_cache), ("d.xyz.gz", write),
    ("input.data", write), ("d.traj", write),
])
def test_writers_take_atoms_and_lists_of_atoms(tmp_path, name, writer):
    images = _labelled()
    writer(images, tmp_path / name)
    writer(images[0], tmp_path / ("one-" + name if name != "input.data" else "one.data"))
    back = read(tmp_path / name)
    assert len(back) == 3
    assert np.allclose(back.positions[:4], images[0].positions)


@pytest.mark.parametrize("bad, match", [("data.xyz", "a file name"), (3, "got int"), ([], "empty list"),
                                        ([bulk("Cu"), "Au"], "item 1 is a str"), (None, "got NoneType")])
def test_structures_of_the_wrong_kind_name_the_argument(tmp_path, bad, match):
    err = _fails(lambda: write_n2p2(bad, tmp_path / "input.data"), "dataset", match=match)
    assert err.field == "dataset"
    assert not (tmp_path / "input.data").exists()


def test_splitters_and_featurise_take_lists_of_atoms():
    from mlexplore.analysis import rdf
    from mlexplore.data import kfold, random_split

    images = _labelled(10)
    train, val, test = random_split(images, seed=1)
    assert (len(train), len(val), len(test)) == (8, 1, 1)
    assert len(list(kfold(images, k=2))) == 2
    assert rdf(images[0], r_max=4.0).r.size > 0


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "input.data"
    write_n2p2(_labelled(), path)
    before = _snapshot(tmp_path)
    nolabel = StructureDataset.from_atoms([bulk("Cu")])
    _fails(lambda: write_n2p2(nolabel, path), "energy", match="needs the per-structure 'energy'")
    assert _snapshot(tmp_path) == before


# ---- arguments of the public training and split functions ----------------------------------------

def _tiny_bpnn():
    from mlexplore.descriptors import G2, SymmetryFunctions
    from mlexplore.models import BPNN

    return BPNN(SymmetryFunctions([G2(1.0, 2.5)], cutoff=4.0, elements=["Cu"]), hidden=(4,))


@pytest.mark.parametrize("kwargs, argument", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": -3}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
    ({"batch_size": True}, "batch_size"), ({"lr": float("nan")}, "lr"), ({"lr": 0.0}, "lr"),
    ({"lr": -1e-3}, "lr"), ({"lr": float("inf")}, "lr"), ({"lr": "1e-3"}, "lr"), ({"epochs": 0}, "epochs"),
    ({"epochs": 2.5}, "epochs"), ({"patience": -1}, "patience"), ({"weight_decay": -0.1}, "weight_decay"),
    ({"weight_decay": float("nan")}, "weight_decay"), ({"seed": -1}, "seed"), ({"seed": 0.5}, "seed"),
    ({"device": "banana"}, "device"), ({"device": "cuda:7"}, "device"),
])
def test_fit_names_the_bad_argument_and_writes_nothing(tmp_path, kwargs, argument):
    from mlexplore.training import fit

    import torch

    if argument == "device" and kwargs["device"].startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    model = _tiny_bpnn()
    ckpt = tmp_path / "ckpt"
    err = _fails(lambda: fit(model, _labelled(4), epochs=kwargs.pop("epochs", 1), checkpoint_dir=ckpt,
                             progress=False, **kwargs), argument)
    assert err.field == argument
    assert not ckpt.exists()


@pytest.mark.parametrize("kwargs, argument", [({"lr": 0}, "lr"), ({"batch_fraction": 0}, "batch_fraction"),
                                              ({"batch_fraction": 1.5}, "batch_fraction"), ({"epochs": -1}, "epochs"),
                                              ({"seed": -2}, "seed")])
def test_fit_tasks_names_the_bad_argument(kwargs, argument):
    from mlexplore.datasets import ising_lattice
    from mlexplore.models.lattice import LatticeMLP
    from mlexplore.training import fit_tasks

    ising = ising_lattice(L=3, n_per_composition=2, progress=False)
    model = LatticeMLP(27, ising.elements, {"energy": "structure"})
    err = _fails(lambda: fit_tasks(model, ising, **{"epochs": 1, **kwargs}), argument)
    assert err.field == argument


@pytest.mark.parametrize("fractions, match", [
    ((0.8, 0.1, 0.1), r"leave the validation and test sets empty"), ((0.5, 0.6), "sum to 1"), ((1.2, -0.2), "non-negative"),
    ((float("nan"), 0.5), "sum to 1"), ("0.8,0.2", "text"), ((1.0,), "at least two"), (("a", "b"), "numbers"),
])
def test_random_split_names_bad_fractions(fractions, match):
    from mlexplore.data import random_split

    err = _fails(lambda: random_split(_labelled(3)[:2], fractions), "fractions", match=match)
    assert err.field == "fractions"


def test_a_zero_fraction_may_leave_its_part_empty():
    from mlexplore.data import random_split

    sizes = [len(p) for p in random_split(_labelled(2), (0.5, 0.5, 0.0))]
    assert sizes == [1, 1, 0]


@pytest.mark.parametrize("call, argument", [
    (lambda d: __import__("mlexplore.data", fromlist=["x"]).random_split(d, seed=-1), "seed"),
    (lambda d: __import__("mlexplore.data", fromlist=["x"]).stratified_split(d, seed=1.5), "seed"),
    (lambda d: list(__import__("mlexplore.data", fromlist=["x"]).kfold(d, k=1)), "k"),
    (lambda d: list(__import__("mlexplore.data", fromlist=["x"]).kfold(d, k=99)), "k"),
    (lambda d: list(__import__("mlexplore.data", fromlist=["x"]).shuffled_splits(d, n=0)), "n"),
    (lambda d: __import__("mlexplore.data", fromlist=["x"]).stratified_split(d, by="colour"), "by"),
    (lambda d: __import__("mlexplore.data", fromlist=["x"]).group_split(d, "no-such-tag"), "leave_out"),
])
def test_split_arguments_are_named(call, argument):
    err = _fails(lambda: call(_labelled(10)), argument)
    assert err.field == argument


# ---- atomic writes: a killed write leaves a temporary that the next write removes -----------------

_KILLED_WRITER = """
import sys, time
from mlexplore.io.files import atomic_write
with atomic_write(sys.argv[1]) as fh:
    fh.write("partial")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_a_sigkilled_write_leaves_the_file_intact_and_the_next_write_cleans_up(tmp_path):
    path = tmp_path / "model.xyz"
    path.write_text("old\n")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stale = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp.xyz")]
    assert len(stale) == 1 and path.read_text() == "old\n"  # the kill left its temporary beside an intact file
    with atomic_write(path) as fh:
        fh.write("new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.xyz"] and path.read_text() == "new\n"


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    path = tmp_path / "d.xyz"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert clean_stale_temporaries(path) == []
        assert any(p.name.endswith(".tmp.xyz") for p in tmp_path.iterdir())
    finally:
        proc.kill()
        proc.wait()
    assert len(clean_stale_temporaries(path)) == 1


def test_old_temporaries_of_the_older_naming_are_cleaned_other_files_are_not(tmp_path):
    path = tmp_path / "d.npz"
    legacy = tmp_path / ".d.npz.ab12cd34.tmp.npz"
    fresh = tmp_path / ".d.npz.ef56gh78.tmp.npz"
    other = tmp_path / ".e.npz.ab12cd34.tmp.npz"
    keep = tmp_path / "d.npz.tmp.notes"
    for p in (legacy, fresh, other, keep):
        p.write_text("x")
    hour_ago = time.time() - 7200
    os.utime(legacy, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    assert clean_stale_temporaries(path) == [legacy]
    assert fresh.exists() and other.exists() and keep.exists()


# ---- fuzz: random mutations of valid files ------------------------------------------------------

_TOKENS = ["nan", "inf", "abc", "", "-1", "1e999", "0", "3.5", "Xx", '"', "=", "{", "\t", "Properties=x:R:1",
           "energy=", "begin", "end", "atom", "lattice", "9" * 30]


def _mutate(text: str, rng: np.random.Generator) -> str:
    lines = text.split("\n")
    kind = rng.integers(6)
    k = int(rng.integers(len(lines)))
    if kind == 0:  # replace one token of a line
        words = lines[k].split(" ")
        words[int(rng.integers(len(words)))] = str(rng.choice(_TOKENS))
        lines[k] = " ".join(words)
    elif kind == 1:  # drop a line
        del lines[k]
    elif kind == 2:  # repeat a line
        lines.insert(k, lines[k])
    elif kind == 3:  # cut the file
        return text[: int(rng.integers(len(text)))]
    elif kind == 4:  # flip bytes (may break UTF-8)
        data = bytearray(text.encode())
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        return data.decode("latin-1")
    else:  # swap two lines
        j = int(rng.integers(len(lines)))
        lines[k], lines[j] = lines[j], lines[k]
    return "\n".join(lines)


@pytest.mark.parametrize("name, good, fmt", [("f.xyz", GOOD_XYZ * 2, None), ("input.data", GOOD_N2P2 * 2, None),
                                             ("f.txt", GOOD_LSMS, "lsms"), ("f.xyz.gz", GOOD_XYZ, None)])
def test_mutated_valid_files_give_a_dataset_or_an_input_error(tmp_path, name, good, fmt):
    """Seeded, bounded in time: a mutation either still reads (to finite positions) or is refused
    with an InputError naming the file; nothing else escapes."""
    import gzip

    rng = np.random.default_rng(20)
    path = tmp_path / name
    refused = read_ok = 0
    start = time.perf_counter()
    for trial in range(300):
        if time.perf_counter() - start > 8:
            break
        text = _mutate(good, rng)
        data = text.encode("latin-1", errors="replace") if trial % 2 else text.encode("utf-8", errors="replace")
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        try:
            ds = read(path, format=fmt)
        except InputError as exc:
            assert str(path) in str(exc), (text, exc)
            refused += 1
        else:
            assert np.isfinite(ds.positions).all() and np.isfinite(ds.cells).all()
            read_ok += 1
    assert refused > 20 and read_ok + refused >= 50


# ---- model files, built-in dataset parameters, the neighbour search --------------------------------

class _Touch:
    """Unpickling this would create ``marker``: the proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _saved_model(tmp_path):
    from mlexplore.training import save_model

    path = tmp_path / "m.pt"
    save_model(_tiny_bpnn(), path)
    return path


@pytest.mark.parametrize("damage, match", [
    ("truncate", "not a readable mlexplore model file"),
    ("random", "neither a torch archive nor a pickle"),
    ("crafted", "refused unread, no code"),
    ("no_state", "no 'state_dict'"),
    ("bad_state", "cannot be built"),
    ("bad_class", "unknown model class"),
])
def test_damaged_or_crafted_model_files(tmp_path, damage, match):
    import torch

    from mlexplore.training import load_model

    path = _saved_model(tmp_path)
    marker = tmp_path / "code-ran"
    payload = torch.load(path, weights_only=True)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "random":
        path.write_bytes(_random_bytes(1000, 5))
    elif damage == "crafted":
        torch.save({**payload, "extra": _Touch(marker)}, path)
    elif damage == "no_state":
        torch.save({k: v for k, v in payload.items() if k != "state_dict"}, path)
    elif damage == "bad_state":
        payload["state_dict"] = {k: (v[..., :1] if v.ndim else v) for k, v in payload["state_dict"].items()}
        torch.save(payload, path)
    else:
        torch.save({**payload, "model_class": "Trojan"}, path)
    _fails(lambda: load_model(path), path, match=match)
    assert not marker.exists()


def test_unknown_parameters_of_a_built_in_dataset_are_named():
    from mlexplore.datasets.generate import generate_dataset

    err = _fails(lambda: generate_dataset("gold", colour="red"), "colour", match="no parameter")
    assert "n_per_group" in str(err)


def test_atoms_far_apart_do_not_crash_the_neighbour_search():
    """vesin 0.6 dies of a floating-point exception (killing the kernel) for an open structure spread
    over about 10⁵ Å; the search puts such structures in a periodic box instead."""
    from ase import Atoms

    from mlexplore.descriptors import G2, SymmetryFunctions

    far = Atoms("Cu3", positions=[[0, 0, 0], [3e5, 0, 0], [0, 0, 2.5]])
    sf = SymmetryFunctions([G2(1.0, 2.5)], cutoff=4.0, elements=["Cu"])
    features = sf.compute(far, min_distance=0) if "min_distance" in sf.compute.__code__.co_varnames else sf.compute(far)
    assert features.shape == (3, 1) and bool(features[1].eq(0).all()) and bool(features[0].gt(0).all())
