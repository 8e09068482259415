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
