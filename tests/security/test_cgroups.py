"""Server and build limits on cgroup v2 (Debian 12's default) and v1 (this machine). v2 is exercised on a
stand-in tree (its files are plain files there), v1 on the real hierarchy when the test may make one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import cgroups
from engine.cgroups import Cage


def test_v2_limits_are_written_under_launchdeck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "launchdeck").mkdir()
    (tmp_path / "launchdeck" / "cgroup.controllers").write_text("cpu memory pids\n")
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    cage = Cage.create("launchdeck-server", memory_mb=256, max_processes=64, cpus=0.5)
    assert cage is not None and cage.version == 2
    (directory,) = cage.directories
    assert (directory / "memory.max").read_text() == str(256 * 1024 * 1024)
    assert (directory / "pids.max").read_text() == "64"
    assert (directory / "cpu.max").read_text() == "50000 100000"
    assert (tmp_path / "launchdeck" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert cage.env()["LAUNCHDECK_CGROUP_PROCS"] == str(directory / "cgroup.procs")


@pytest.mark.skipif(
    os.geteuid() != 0 or cgroups.cgroup_version() != 1, reason="needs root on a cgroup v1 machine"
)
def test_v1_limits_are_real() -> None:
    cage = Cage.create("launchdeck-test", memory_mb=128, max_processes=32, cpus=1.0)
    assert cage is not None
    made = list(cage.directories)
    try:
        memory = next(d for d in cage.directories if "/memory/" in str(d))
        assert int((memory / "memory.limit_in_bytes").read_text()) == 128 * 1024 * 1024
        pids = next(d for d in cage.directories if "/pids/" in str(d))
        assert (pids / "pids.max").read_text().strip() == "32"
    finally:
        cage.remove()
    assert made and not any(d.exists() for d in made)
