"""Structures from memory (ASE Atoms, lists, datasets) are checked where they enter: the descriptors'
compute / prepare, FeatureCache, Potential.predict / calculate and the ASE calculator refuse
overlapping atoms (periodic images included), non-finite positions and cells and singular periodic
cells, naming the structure and the atoms; the limit is configurable and can be switched off."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

import mlexplore.data.validate as validate
from mlexplore import InputError, StructureDataset
from mlexplore.data import COVALENT_FRACTION, MIN_DISTANCE, check_dataset, check_structures
from mlexplore.descriptors import G2, G4, FeatureCache, SymmetryFunctions
from mlexplore.models import BPNN
from mlexplore.training import MLExploreCalculator, Potential, fit


def descriptor():
    return SymmetryFunctions([G2(1.0, 2.5), G2(0.5, 3.5), G4(0.02, 1, -1)], cutoff=5.0, elements=["Fe", "H"])


@pytest.fixture(scope="module")
def potential():
    torch.manual_seed(0)
    return Potential(BPNN(descriptor(), hidden=(4,), activation="tanh"))


def fe3_overlap():
    """Three Fe atoms; atoms 1 and 2 sit on the same spot (distance 0)."""
    return Atoms("Fe3", positions=[[0, 0, 0], [2.5, 0, 0], [2.5, 0, 0]])


def good_fe():
    a = bulk("Fe", "bcc", a=2.87, cubic=True).repeat((2, 1, 1))
    a.set_initial_magnetic_moments(None)
    a.rattle(0.02, seed=0)
    return a


def assert_overlap(info, i, j, structure=0):
    msg = str(info.value)
    assert f"atoms {i} and {j} are" in msg, msg
    assert "overlapping atoms" in msg, msg
    assert info.value.structure == structure, msg
    assert info.value.field == "positions"


# ------------------------------------------------------------------------ distance 0, in memory
def test_compute_refuses_a_distance_zero_pair():
    sf = descriptor()
    with pytest.raises(InputError) as info:
        sf.compute(fe3_overlap())
    assert_overlap(info, 1, 2)
    assert "0.0000 Å apart" in str(info.value)


def test_compute_names_the_structure_across_chunks():
    sf = descriptor()
    with pytest.raises(InputError) as info:  # chunks of one structure each: the index is still global
        sf.compute([good_fe(), good_fe(), fe3_overlap()], max_atoms_per_chunk=3)
    assert_overlap(info, 1, 2, structure=2)


def test_prepare_refuses_a_distance_zero_pair():
    with pytest.raises(InputError) as info:
        descriptor().prepare([good_fe(), fe3_overlap()])
    assert_overlap(info, 1, 2, structure=1)


def test_feature_cache_refuses_a_distance_zero_pair():
    with pytest.raises(InputError) as info:
        FeatureCache(StructureDataset.from_atoms([fe3_overlap()]), max_cutoff=5.0)
    assert_overlap(info, 1, 2)


@pytest.mark.parametrize("forces", [True, False])
def test_predict_refuses_a_distance_zero_pair(potential, forces):
    ds = StructureDataset.from_atoms([good_fe(), good_fe(), good_fe(), fe3_overlap()])
    with pytest.raises(InputError) as info:  # batches of 2: structure 3 is the second of its batch
        potential.predict(ds, forces=forces, batch_size=2)
    assert_overlap(info, 1, 2, structure=3)


def test_ase_calculator_refuses_a_distance_zero_pair(potential):
    atoms = fe3_overlap()
    atoms.calc = potential.as_ase_calculator()
    with pytest.raises(InputError) as info:
        atoms.get_forces()
    assert_overlap(info, 1, 2)
    atoms = fe3_overlap()
    atoms.calc = MLExploreCalculator(potential.model)  # a bare model, wrapped
    with pytest.raises(InputError, match="atoms 1 and 2 are 0.0000 Å apart"):
        atoms.get_potential_energy()


def test_calculator_finds_overlaps_in_the_descriptor_list(potential, monkeypatch):
    """Every MD step calls calculate: the overlap check reuses the descriptor's own neighbour list
    and distances instead of a second (vesin) search."""
    def no_search(*args, **kwargs):
        raise AssertionError("a separate neighbour search for the overlap check")

    monkeypatch.setattr(validate, "_overlaps", no_search)
    potential.calculate(good_fe())  # no search, no error
    with pytest.raises(InputError, match="atoms 1 and 2 are"):
        potential.calculate(fe3_overlap())


# ------------------------------------------------------------------------------ periodic images
def image_pair(pbc=True):
    """BCC Fe cell, a = 2.87 Å: atom 1 moved to 0.03 Å of atom 0's image across the x face."""
    a = bulk("Fe", "bcc", a=2.87, cubic=True)
    a.set_initial_magnetic_moments(None)
    a.positions[1] = [2.84, 0.0, 0.0]
    a.pbc = pbc
    return a


def test_close_pair_through_a_periodic_image_is_refused(potential):
    for run in (lambda a: descriptor().compute(a), lambda a: potential.predict(StructureDataset.from_atoms([a])),
                potential.calculate, check_structures):
        with pytest.raises(InputError) as info:
            run(image_pair())
        assert_overlap(info, 0, 1)
        assert "0.0300 Å apart (through a periodic image)" in str(info.value)
    descriptor().compute(image_pair(pbc=False))  # 2.84 Å apart inside the cell: fine without images


def test_atom_close_to_its_own_image_is_refused():
    atoms = Atoms("Fe", cell=[0.6, 4.0, 4.0], pbc=True)
    with pytest.raises(InputError, match="atom 0 is 0.6000 Å from its own periodic image"):
        descriptor().compute(atoms)
    descriptor().compute(Atoms("Fe", cell=[0.6, 4.0, 4.0], pbc=False))  # no images: fine


def test_partly_periodic_structures_have_images_only_where_periodic():
    slab = Atoms("Fe2", positions=[[0.02, 1.0, 0.1], [3.97, 1.0, 0.1]], cell=[4.0, 4.0, 10.0],
                 pbc=[True, True, False])  # 0.05 Å apart through x, which is periodic
    with pytest.raises(InputError, match=r"atoms 0 and 1 are 0\.0500 Å apart \(through a periodic image\)"):
        check_structures(slab)
    slab.positions = [[2.0, 1.0, 0.02], [2.0, 1.0, 9.97]]  # 0.05 Å apart through z, which is not periodic
    check_structures(slab)
    descriptor().compute(slab)
    slab.pbc = True
    with pytest.raises(InputError, match=r"atoms 0 and 1 are 0\.0500 Å apart \(through a periodic image\)"):
        check_structures(slab)


def test_skewed_cells():
    """A cell whose lattice planes are close: the same lattice is searched in a reduced basis, so a
    lattice vector shorter than the limit (an atom on its own image) is found and a skewed but
    sound lattice passes, quickly."""
    flat = Atoms("Cu2", positions=[[0, 0, 0], [2, 2, 2]], cell=[[4, 0, 0], [0, 4, 0], [4, 4, 1e-5]], pbc=True)
    with pytest.raises(InputError, match="atom 0 is 0.0000 Å from its own periodic image"):
        check_structures(flat)
    sheared = Atoms("Cu2", positions=[[0, 0, 0], [2, 2, 2]], cell=[[4, 0, 0], [0, 4, 0], [400, 4, 2.5]], pbc=True)
    check_structures(sheared)  # the lattice of a 4 × 4 × 2.5 Å box: nearest image 2.87 Å away
    sheared.positions[1] = [0.0, 0.0, 2.45]  # 0.05 Å from atom 0's image one reduced vector up
    with pytest.raises(InputError, match=r"atoms 0 and 1 are 0\.0500 Å apart \(through a periodic image\)"):
        check_structures(sheared)


def test_absurd_sizes_are_refused_not_crashed():
    """vesin dies of a floating-point exception on a box with one edge ≳ 5·10⁵ Å: a periodic cell, or
    the spread of a partly periodic structure, that long is refused first; an open structure may
    spread any distance (it is searched in a box of its own)."""
    for atoms, match in [
            (Atoms("Cu2", positions=[[0, 0, 0], [2, 2, 2]], cell=[1e30, 4, 4], pbc=True), "periodic cell vector 0 is 1e"),
            (Atoms("Cu2", positions=[[0, 0, 0], [2, 2, 1e6]], cell=[4, 4, 10], pbc=[True, True, False]),
             "the atoms spread over 1e")]:
        with pytest.raises(InputError, match=match):
            check_structures(atoms, min_distance=0)
        with pytest.raises(InputError, match=match):
            descriptor().compute(atoms)
    far = Atoms("Fe3", positions=[[0, 0, 0], [1e6, 0, 0], [0, 0, 0.05]])
    with pytest.raises(InputError, match="atoms 0 and 2 are 0.0500 Å apart"):
        check_structures(far)
    far.positions[2] = [0, 0, 2.4]
    check_structures(far)
    assert descriptor().compute(far)[1].eq(0).all()  # alone: no neighbours


# ------------------------------------------------------------------------- non-finite and singular
def runners(potential):
    return {"compute": lambda a: descriptor().compute(a), "prepare": lambda a: descriptor().prepare(a),
            "predict": lambda a: potential.predict(StructureDataset.from_atoms([a])),
            "calculator": lambda a: _forces(a, potential)}


def _forces(atoms, potential):
    atoms.calc = potential.as_ase_calculator()
    return atoms.get_forces()


@pytest.mark.parametrize("entry", ["compute", "prepare", "predict", "calculator"])
def test_nan_position_is_refused(potential, entry):
    atoms = good_fe()
    atoms.positions[2, 1] = np.nan
    with pytest.raises(InputError) as info:
        runners(potential)[entry](atoms)
    assert "non-finite position" in str(info.value) and "for atom 2" in str(info.value)
    assert info.value.field == "positions" and info.value.structure == 0


@pytest.mark.parametrize("entry", ["compute", "prepare", "predict", "calculator"])
def test_inf_cell_is_refused(potential, entry):
    atoms = good_fe()
    atoms.cell[1, 1] = np.inf
    with pytest.raises(InputError, match="non-finite cell") as info:
        runners(potential)[entry](atoms)
    assert info.value.field == "cell"


@pytest.mark.parametrize("entry", ["compute", "prepare", "predict", "calculator"])
def test_singular_periodic_cell_is_refused(potential, entry):
    atoms = Atoms("Fe2", positions=[[0, 0, 0], [1.4, 1.4, 1.4]], cell=[[2.87, 0, 0], [0, 2.87, 0], [0, 0, 0]],
                  pbc=True)
    with pytest.raises(InputError, match="the cell is singular") as info:
        runners(potential)[entry](atoms)
    assert info.value.field == "cell"


def test_flat_periodic_cell_is_refused_and_open_cells_pass():
    flat = Atoms("Fe", cell=[[3, 0, 0], [0, 3, 0], [3, 3, 1e-7]], pbc=True)  # volume 9e-7 Å³, edges ≥ 3 Å
    with pytest.raises(InputError, match="the cell is singular"):
        check_structures(flat)
    cluster = Atoms("Fe2", positions=[[0, 0, 0], [2.4, 0, 0]])  # zero cell, not periodic: fine
    assert descriptor().compute(cluster).shape == (2, descriptor().n_features)


# --------------------------------------------------------------------------- switching it off
def test_min_distance_zero_lets_overlaps_through(potential):
    sf = descriptor()
    g = sf.compute(fe3_overlap(), min_distance=0)
    assert g.shape == (3, sf.n_features) and torch.isfinite(g).all()
    sf.prepare(fe3_overlap(), min_distance=0)
    FeatureCache(StructureDataset.from_atoms([fe3_overlap()]), max_cutoff=5.0, min_distance=0)
    out = potential.predict(StructureDataset.from_atoms([fe3_overlap()]), min_distance=0)
    assert np.isfinite(out["forces"]).all()
    for calc in (potential.as_ase_calculator(min_distance=0), MLExploreCalculator(potential, min_distance=0),
                 Potential(potential.model, min_distance=0).as_ase_calculator()):
        atoms = fe3_overlap()
        atoms.calc = calc
        assert np.isfinite(atoms.get_forces()).all()
    # ... but non-finite input is never let through
    atoms = fe3_overlap()
    atoms.positions[0, 0] = np.inf
    with pytest.raises(InputError, match="non-finite position"):
        sf.compute(atoms, min_distance=0)


def test_a_potential_keeps_its_limit_and_a_call_overrides_it(potential):
    relaxed = Potential(potential.model, min_distance=0.5)
    fe = Atoms("Fe2", positions=[[0, 0, 0], [0.6, 0, 0]])
    relaxed.calculate(fe)  # 0.6 Å ≥ 0.5 Å
    with pytest.raises(InputError, match="closer than 0.7 Å"):
        relaxed.calculate(fe, min_distance=0.7)
    with pytest.raises(InputError, match="r_cov"):
        relaxed.predict(StructureDataset.from_atoms([fe]), min_distance=None)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf, "far", "0.5", True])
def test_bad_min_distance_is_refused(potential, bad):
    with pytest.raises(InputError) as info:
        descriptor().compute(good_fe(), min_distance=bad)
    assert info.value.field == "min_distance"
    with pytest.raises(InputError):
        Potential(potential.model, min_distance=bad)


# ------------------------------------------------------------------- the covalent-radii default
def test_limit_from_covalent_radii():
    sf = descriptor()
    h2 = Atoms("H2", positions=[[0, 0, 0], [0.6, 0, 0]])  # limit 0.5 × (0.31 + 0.31) = 0.31 Å
    fe2 = Atoms("Fe2", positions=[[0, 0, 0], [0.6, 0, 0]])  # limit 0.5 × (1.32 + 1.32) = 1.32 Å
    fe_h = Atoms("FeH", positions=[[0, 0, 0], [0.6, 0, 0]])  # limit 0.5 × (1.32 + 0.31) = 0.815 Å
    sf.compute(h2)
    with pytest.raises(InputError, match=r"closer than 1\.320 Å = 0\.5 × \(r_cov\(Fe\) \+ r_cov\(Fe\)\)"):
        sf.compute(fe2)
    with pytest.raises(InputError, match=r"0\.815 Å = 0\.5 × \(r_cov\(Fe\) \+ r_cov\(H\)\)"):
        sf.compute(fe_h)
    # a fixed limit in Å applies to every pair alike
    sf.compute(fe2, min_distance=0.5)
    with pytest.raises(InputError, match="closer than 0.7 Å"):
        sf.compute(h2, min_distance=0.7)
    # a limit beyond the descriptor's reach (5 Å) is still checked
    with pytest.raises(InputError, match="closer than 6 Å"):
        sf.compute(Atoms("Fe2", positions=[[0, 0, 0], [5.5, 0, 0]]), min_distance=6.0)
    # the fraction of check_structures
    check_structures(fe2, fraction=0.2)  # 0.2 × 2.64 = 0.528 Å
    with pytest.raises(InputError, match=r"0\.620 Å = 1 × \(r_cov\(H\) \+ r_cov\(H\)\)"):
        check_structures(h2, fraction=1.0)
    assert COVALENT_FRACTION == 0.5


def test_fit_refuses_overlapping_training_structures():
    torch.manual_seed(0)
    model = BPNN(descriptor(), hidden=(4,))
    bad = fe3_overlap()
    from ase.calculators.singlepoint import SinglePointCalculator

    bad.calc = SinglePointCalculator(bad, energy=-1.0, forces=np.zeros((3, 3)))
    good = good_fe()
    good.calc = SinglePointCalculator(good, energy=-2.0, forces=np.zeros((len(good), 3)))
    with pytest.raises(InputError, match="atoms 1 and 2 are 0.0000 Å apart"):
        fit(model, StructureDataset.from_atoms([good, bad]), epochs=1, progress=False, device="cpu")


# ------------------------------------------------------------------------------- the files' check
def test_check_dataset_keeps_the_fixed_limit_of_the_readers():
    fe2 = StructureDataset.from_atoms([Atoms("Fe2", positions=[[0, 0, 0], [0.6, 0, 0]])])
    check_dataset(fe2)  # 0.6 Å ≥ MIN_DISTANCE = 0.1 Å
    assert MIN_DISTANCE == 0.1
    with pytest.raises(InputError, match="overlapping atoms"):
        check_dataset(fe2, min_distance=None)
    close = StructureDataset.from_atoms([Atoms("Fe2", positions=[[0, 0, 0], [0.05, 0, 0]])])
    with pytest.raises(InputError, match="0.0500 Å apart"):
        check_dataset(close, path="x.xyz", lines=[7])


# --------------------------------------------------------------------------- shipped datasets
@pytest.fixture(scope="module")
def shipped():
    from mlexplore.datasets import fe_spin_dft, fept_dft, gold, ising_lattice, lattice_alloy

    return {
        "gold": gold(n_per_group=2, progress=False),
        "cuau": lattice_alloy("CuAu", n_per_composition=2, rattle=0.1, strain=0.02, progress=False),
        "cuau-bcc": lattice_alloy("CuAu", lattice="bcc", n_per_composition=1, rattle=0.1, progress=False),
        "ising": ising_lattice(L=3, n_per_composition=2, progress=False),
        "fept_dft": fept_dft(),
        "fe_spin_dft": fe_spin_dft(),
    }


@pytest.mark.parametrize("name", ["gold", "cuau", "cuau-bcc", "ising", "fept_dft", "fe_spin_dft"])
def test_shipped_datasets_pass(shipped, name):
    ds = shipped[name]
    assert check_structures(ds) is ds
    # not a vacuous pass: the same data is refused once the limit reaches its closest pairs
    # (smallest d / (r_i + r_j) over these sets: 0.74 to 1.6; the default fraction is 0.5)
    with pytest.raises(InputError, match="overlapping atoms"):
        check_structures(ds, fraction=2.0)


def test_shipped_iron_through_the_descriptor(shipped):
    ds = shipped["fe_spin_dft"][:40]
    sf = SymmetryFunctions([G2(1.0, 2.5), G4(0.02, 1, -1)], cutoff=4.5, elements=["Fe"])
    assert sf.compute(ds).shape == (ds.n_total_atoms, sf.n_features)
