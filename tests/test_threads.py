"""mlexplore.threads: cgroup quotas from fake files, the load reading, the policy and its environment
override, and configure_threads (no timings)."""

from __future__ import annotations

import os

import pytest
import torch

from mlexplore.errors import InputError
from mlexplore.threads import (ENV_VAR, cgroup_cpu_limit, choose_threads, configure_threads, other_load,
                               usable_cores)


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_self(tmp_path):
    """A /proc/self/cgroup that does not exist: only the fake root is read."""
    return tmp_path / "no-such-self-cgroup"


def affinity() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ------------------------------------------------------------------------------------------- cgroups
def test_v2_quota_of_one_and_a_half_cores_rounds_up_to_two(tmp_path, no_self):
    write(tmp_path / "cpu.max", "150000 100000\n")
    assert cgroup_cpu_limit(tmp_path, no_self) == pytest.approx(1.5)
    assert usable_cores(tmp_path, no_self) == min(2, affinity())


def test_v2_max_is_no_limit(tmp_path, no_self):
    write(tmp_path / "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(tmp_path, no_self) is None
    assert usable_cores(tmp_path, no_self) == affinity()


def test_v2_quota_below_one_core_still_gives_one(tmp_path, no_self):
    write(tmp_path / "cpu.max", "20000 100000\n")
    assert cgroup_cpu_limit(tmp_path, no_self) == pytest.approx(0.2)
    assert usable_cores(tmp_path, no_self) == 1


def test_v2_the_own_path_and_its_parents_are_read_and_the_smallest_wins(tmp_path):
    write(tmp_path / "cpu.max", "max 100000\n")
    write(tmp_path / "user.slice" / "cpu.max", "100000 100000\n")
    write(tmp_path / "user.slice" / "kernel.scope" / "cpu.max", "300000 100000\n")
    self_cgroup = tmp_path / "self"
    write(self_cgroup, "0::/user.slice/kernel.scope\n")
    assert cgroup_cpu_limit(tmp_path, self_cgroup) == pytest.approx(1.0)
    assert usable_cores(tmp_path, self_cgroup) == 1


@pytest.mark.parametrize("controller", ["cpu", "cpu,cpuacct"])
def test_v1_quota_and_period(tmp_path, no_self, controller):
    write(tmp_path / controller / "cpu.cfs_quota_us", "250000\n")
    write(tmp_path / controller / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(tmp_path, no_self) == pytest.approx(2.5)
    assert usable_cores(tmp_path, no_self) == min(3, affinity())


def test_v1_own_path_from_proc_self_cgroup(tmp_path):
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    write(tmp_path / "cpu" / "docker" / "abc" / "cpu.cfs_quota_us", "50000\n")
    write(tmp_path / "cpu" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    self_cgroup = tmp_path / "self"
    write(self_cgroup, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n")
    assert cgroup_cpu_limit(tmp_path, self_cgroup) == pytest.approx(0.5)


def test_v1_minus_one_is_no_limit(tmp_path, no_self):
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(tmp_path, no_self) is None
    assert usable_cores(tmp_path, no_self) == affinity()


@pytest.mark.parametrize("files", [{}, {"cpu.max": ""}, {"cpu.max": "garbage"}, {"cpu.max": "0 100000"},
                                   {"cpu/cpu.cfs_quota_us": "100000"}])
def test_missing_or_unreadable_files_are_no_limit(tmp_path, no_self, files):
    for name, text in files.items():
        write(tmp_path / name, text)
    assert cgroup_cpu_limit(tmp_path, no_self) is None
    assert usable_cores(tmp_path, no_self) == affinity()


def test_a_missing_root(tmp_path, no_self):
    assert usable_cores(tmp_path / "nowhere", no_self) == affinity()


def test_the_real_machine_gives_at_least_one_core():
    assert 1 <= usable_cores() <= affinity()


# ------------------------------------------------------------------------------------------- load
def test_other_load_from_loadavg(tmp_path):
    write(tmp_path / "loadavg", "0.40 0.50 0.60 3/120 4242\n")  # 3 runnable, one of them the reader
    assert other_load(tmp_path / "loadavg") == 2
    write(tmp_path / "loadavg", "1.60 0.50 0.60 1/120 4242\n")  # nothing else now, busy in the last minute
    assert other_load(tmp_path / "loadavg") == 2
    write(tmp_path / "loadavg", "0.10 0.10 0.10 1/120 4242\n")
    assert other_load(tmp_path / "loadavg") == 0


def test_other_load_without_the_file_is_a_number(tmp_path):
    assert other_load(tmp_path / "missing") >= 0


# ------------------------------------------------------------------------------------------- policy
@pytest.mark.parametrize("cores, others, expected", [
    (1, 0, 1), (2, 0, 1), (2, 1, 1), (2, 5, 1), (4, 0, 2), (8, 0, 4), (8, 6, 2), (16, 3, 8), (16, 20, 1)])
def test_policy_keeps_half_the_cores_free_and_subtracts_the_load(cores, others, expected):
    assert choose_threads(cores, others, environ={}) == expected


def test_policy_reads_the_machine_when_not_told():
    assert 1 <= choose_threads(environ={}) <= usable_cores()


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), (" 12 ", 12)])
def test_environment_variable_overrides(value, expected):
    assert choose_threads(2, 5, environ={ENV_VAR: value}) == expected
    assert choose_threads(2, 5, environ={ENV_VAR: value, "OMP_NUM_THREADS": "7"}) == expected


def test_empty_environment_variable_is_unset():
    assert choose_threads(8, 0, environ={ENV_VAR: ""}) == 4


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "4 threads"])
def test_invalid_environment_variable_names_itself_and_the_value(value):
    with pytest.raises(InputError, match=ENV_VAR) as info:
        choose_threads(environ={ENV_VAR: value})
    assert repr(value) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_omp_num_threads_is_honoured_and_ignored_when_malformed():
    assert choose_threads(8, 0, environ={"OMP_NUM_THREADS": "3"}) == 3
    assert choose_threads(8, 0, environ={"OMP_NUM_THREADS": "many"}) == 4
    assert choose_threads(8, 0, environ={"OMP_NUM_THREADS": "0"}) == 4


# ------------------------------------------------------------------------------------------- configure
def test_configure_sets_torch_threads_and_returns_the_count(restore_threads):
    other = 2 if torch.get_num_threads() == 1 else 1
    assert configure_threads(other) == other
    assert torch.get_num_threads() == other
    assert configure_threads(other) == other  # a second call changes nothing
    assert torch.get_num_threads() == other
    assert configure_threads(1) == 1
    assert torch.get_num_threads() == 1


def test_configure_without_a_count_applies_the_policy(restore_threads, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "3")
    assert configure_threads() == 3
    assert torch.get_num_threads() == 3
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    n = configure_threads()
    assert 1 <= n <= usable_cores()
    assert torch.get_num_threads() == n


def test_configure_with_a_bad_environment_variable_raises_and_keeps_the_count(restore_threads, monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv(ENV_VAR, "lots")
    with pytest.raises(InputError, match=f"{ENV_VAR}='lots'"):
        configure_threads()
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None.__class__])
def test_configure_rejects_a_bad_count(restore_threads, bad):
    before = torch.get_num_threads()
    with pytest.raises(InputError, match="positive whole number"):
        configure_threads(bad)
    assert torch.get_num_threads() == before


def test_configure_accepts_integer_like_counts(restore_threads):
    import numpy as np

    assert configure_threads(np.int64(1)) == 1
    assert type(configure_threads(np.int64(1))) is int
