"""A stand-in for GPAW in the DFT tests (test_dft, test_cli): fast, deterministic, and failing on purpose."""

import numpy as np
from ase.calculators.calculator import Calculator, all_changes


class FakeDFT(Calculator):
    """A stand-in calculator: a harmonic energy, moments 0.9 × initial; 16-atom cells 'fail'."""

    implemented_properties = ["energy", "forces", "stress", "magmoms", "magmom"]
    calls = 0

    def calculate(self, atoms=None, properties=["energy"], system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        FakeDFT.calls += 1
        if len(self.atoms) == 16:
            raise RuntimeError("SCF did not converge in 3 iterations")
        m = self.atoms.get_initial_magnetic_moments()
        self.results = dict(energy=float((self.atoms.positions ** 2).sum()), forces=-2 * self.atoms.positions,
                            stress=np.arange(6.0), magmoms=0.9 * m, magmom=float(0.9 * m.sum()))


def fake(settings, atoms, kpts, txt):
    return FakeDFT()


class FakeNonCollinearDFT(Calculator):
    """A stand-in for GPAW's non-collinear calculator: energy −J Σ_pairs u_i·u_j of the seeded
    directions plus a harmonic term; reached moments = 0.9 × seeds; no stress (as GPAW 26.7)."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=["energy"], system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        m = np.asarray(self.atoms.get_initial_magnetic_moments(), float).reshape(-1, 3)
        u = m / np.linalg.norm(m, axis=1, keepdims=True)
        pair = float((u @ u.T).sum() - len(u)) / 2
        self.results = dict(energy=float((self.atoms.positions ** 2).sum()) - 0.1 * pair,
                            forces=-2 * self.atoms.positions)
        self.moments = 0.9 * m

    def get_stress(self, atoms=None):
        raise ValueError("no stress for non-collinear runs")

    def get_non_collinear_magnetic_moments(self, atoms=None):
        return self.moments

    def get_non_collinear_magnetic_moment(self, atoms=None):
        return self.moments.sum(axis=0)


def fake_noncollinear(settings, atoms, kpts, txt):
    return FakeNonCollinearDFT()


def emt(settings, atoms, kpts, txt):
    """ASE's EMT as the labeller (Cu, Au, …): real energies, forces and stress in milliseconds. Use it
    with ``DFTSettings(spinpol=False, hirshfeld=False)``: EMT has no moments and no density."""
    from ase.calculators.emt import EMT

    return EMT()
