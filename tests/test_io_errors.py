"""Every malformed input gets its own clear message naming the file, the line and the problem."""

import numpy as np
import pytest

from mlexplore import InputError
from mlexplore.io import read, read_lsms, read_n2p2

GOOD_XYZ = """2
Lattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc="T T T"
Cu 0.0 0.0 0.0 0.1 0.0 0.0
Au 2.0 2.0 2.0 -0.1 0.0 0.0
"""


def expect(path, match, line=None, reader=read, **kwargs):
    with pytest.raises(InputError) as info:
        reader(path, **kwargs)
    msg = str(info.value)
    assert str(path) in msg, msg
    if line is not None:
        assert f"line {line}" in msg, msg
        assert info.value.line == line
    assert match in msg, msg
    return info.value


def test_good_xyz_reads(tmp_path):
    p = tmp_path / "good.xyz"
    p.write_text(GOOD_XYZ + GOOD_XYZ)
    ds = read(p)
    assert len(ds) == 2 and ds.label("energy").tolist() == [-1.5, -1.5]


@pytest.mark.parametrize("mutate, match, line", [
    (lambda t: t.replace("Au 2.0 2.0 2.0 -0.1 0.0 0.0", "Au 2.0 2.0 2.0 -0.1 0.0"), "expected 7 fields", 4),
    (lambda t: t.replace("Au 2.0 2.0", "Au 2.0 abc"), "'abc' is not a number", 4),
    (lambda t: t.replace("Au 2.0 2.0", "Au 2.0 nan"), "non-finite", 4),
    (lambda t: t.replace("Au 2.0", "Qq 2.0"), "unknown element 'Qq'", 4),
    (lambda t: t.replace("2\n", "3\n", 1), "file ends after 2 of 3 atom lines", 1),
    (lambda t: "two\n" + t[2:], "expected the number of atoms", 1),
    (lambda t: t.replace("Au 2.0 2.0 2.0", "Au 0.05 0.0 0.0"), "overlapping atoms", 1),
])
def test_xyz_errors(tmp_path, mutate, match, line):
    p = tmp_path / "bad.xyz"
    p.write_text(mutate(GOOD_XYZ))
    expect(p, match, line)


def test_xyz_atom_count_too_small_points_at_the_extra_line(tmp_path):
    p = tmp_path / "bad.xyz"
    p.write_text(GOOD_XYZ.replace("2\n", "1\n", 1))
    err = expect(p, "expected the number of atoms", 4)
    assert "atom count" in str(err)


def test_nan_in_comment_label(tmp_path):
    p = tmp_path / "bad.xyz"
    p.write_text(GOOD_XYZ + GOOD_XYZ.replace("energy=-1.5", "energy=nan"))
    err = expect(p, "non-finite", 5)
    assert err.field == "energy" and err.structure == 1


def test_overlap_through_periodic_image(tmp_path):
    p = tmp_path / "bad.xyz"
    p.write_text(GOOD_XYZ.replace("Au 2.0 2.0 2.0", "Au 3.95 0.0 0.0"))
    expect(p, "0.0500 Å apart", 1)


# ----------------------------------------------------------------------------- LSMS
GOOD_LSMS = "-100.5 0 0\n26 0 0.0 0.0 0.0 26.1 2.5\n78 1 1.4 1.4 1.4 77.9 0.3\n"


@pytest.mark.parametrize("text, match, line", [
    ("", "expected the total energy", 1),
    ("energy\n26 0 0 0 0 26 2\n", "'energy' is not a number", 1),
    ("-100.5\n26 0 0.0 0.0 0.0 26.1\n", "missing field(s) moment", 2),
    ("-100.5\n26 0 0.0 zero 0.0 26.1 2.5\n", "'zero' is not a number", 2),
    ("-100.5\n26 0 0.0 0.0 0.0 26.1 inf\n", "non-finite", 2),
    ("-100.5\n130 0 0.0 0.0 0.0 26.1 2.5\n", "unknown element: Z = 130", 2),
    ("-100.5\n26.5 0 0.0 0.0 0.0 26.1 2.5\n", "'26.5' is not an integer", 2),
    (GOOD_LSMS + "26 1 3 3 3 26 2\n", "duplicated index 1", 4),
    ("-100.5\n26 0 0 0 0 26 2\n26 2 2 2 2 26 2\n", "index 1 is missing", None),
    ("-100.5\n26 0 0 0 0 26 2\n26 1 0.05 0 0 26 2\n", "overlapping atoms", 2),
    ("-100.5\n", "no atom lines", 2),
])
def test_lsms_errors(tmp_path, text, match, line):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    expect(p, match, line, reader=read_lsms)


def test_lsms_wrong_atom_count(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text(GOOD_LSMS)
    expect(p, "wrong atom count: 2 atom lines, expected 32", reader=read_lsms, n_atoms=32)


def test_lsms_auto_references_need_pure_structures(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text(GOOD_LSMS)
    with pytest.raises(InputError, match="pure Fe structure"):
        read_lsms(p, references="auto")
    with pytest.raises(InputError, match=r"no reference energy for element\(s\) \['Pt'\]"):
        read_lsms(p, references={"Fe": -1.0})


def test_lsms_error_names_the_file_in_a_directory(tmp_path):
    (tmp_path / "a.txt").write_text(GOOD_LSMS)
    (tmp_path / "b.txt").write_text(GOOD_LSMS.replace("1.4 1.4", "1.4 x"))
    err = expect(tmp_path / "b.txt", "'x' is not a number", 3, reader=lambda p: read_lsms(p.parent))
    assert err.path.endswith("b.txt")


# ----------------------------------------------------------------------------- n2p2
GOOD_N2P2 = """begin
comment test
lattice 4.0 0.0 0.0
lattice 0.0 4.0 0.0
lattice 0.0 0.0 4.0
atom 0.0 0.0 0.0 Cu 0.0 0.0 0.1 0.0 0.0
atom 2.0 2.0 2.0 Au 0.0 0.0 -0.1 0.0 0.0
energy -1.5
charge 0.0
end
"""


@pytest.mark.parametrize("mutate, match, line", [
    (lambda t: t.replace("Au 0.0 0.0 -0.1 0.0 0.0", "Au 0.0 0.0 -0.1 0.0"), "missing field 'fz'", 7),
    (lambda t: t.replace("atom 2.0 2.0", "atom 2.0 two"), "'two' is not a number", 7),
    (lambda t: t.replace("Au 0.0", "Zz 0.0"), "unknown element 'Zz'", 7),
    (lambda t: t.replace("energy -1.5", "energy NaN"), "non-finite", 8),
    (lambda t: t.replace("energy -1.5\n", ""), "has no 'energy'", 9),
    (lambda t: t.replace("end\n", ""), "missing 'end'", None),
    (lambda t: t.replace("lattice 0.0 0.0 4.0\n", ""), "2 'lattice' lines", 1),
    (lambda t: t.replace("comment test", "comment test\nvolume 3"), "unknown keyword 'volume'", 3),
    (lambda t: "atom 1 2 3\n" + t, "outside a begin", 1),
    (lambda t: t.replace("atom 2.0 2.0 2.0", "atom 0.0 0.0 0.05"), "overlapping atoms", 1),
])
def test_n2p2_errors(tmp_path, mutate, match, line):
    p = tmp_path / "input.data"
    p.write_text(mutate(GOOD_N2P2))
    expect(p, match, line, reader=read_n2p2)


def test_n2p2_good_and_foreign_comment(tmp_path):
    p = tmp_path / "input.data"
    p.write_text(GOOD_N2P2)
    ds = read(p)
    assert ds.meta[0] == {"comment": "test"}
    np.testing.assert_array_equal(ds.label("forces")[:, 0], [0.1, -0.1])


def test_missing_file_and_unreadable_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read(tmp_path / "nope.xyz")
    p = tmp_path / "junk.cif"
    p.write_text("this is not a cif\n")
    with pytest.raises(InputError, match="junk.cif"):
        read(p)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="unreadable dataset cache"):
        read(bad)
