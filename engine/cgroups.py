"""Per-process-tree resource limits in a cgroup: memory, processes and CPU, on cgroup v2 (Debian 12's
default: one unified hierarchy) or v1 (one hierarchy per controller, as on hybrid machines).

The caller starts its command through ``join_prefix()`` (a ``sh`` that writes its own pid into every
``cgroup.procs`` listed in ``LAUNCHDECK_CGROUP_PROCS`` and then execs), so the command and all it
spawns are inside before any of it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000
JOIN_SCRIPT = 'for p in $LAUNCHDECK_CGROUP_PROCS; do echo $$ > "$p" || exit 97; done; exec "$@"'


def join_prefix(name: str = "launchdeck-sandbox") -> list[str]:
    return ["/bin/sh", "-c", JOIN_SCRIPT, name]


def _own_path(controller: str | None) -> str | None:
    """This process's cgroup in ``controller``'s v1 hierarchy, or (None) in the v2 hierarchy."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if controller is None and number == "0" and controllers == "":
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    return None


def cgroup_version() -> int | None:
    """2 when the unified hierarchy has the memory controller, 1 when v1 memory exists, else None."""
    with contextlib.suppress(OSError):
        if "memory" in (CGROUP_ROOT / "cgroup.controllers").read_text().split():
            return 2
    if (CGROUP_ROOT / "memory" / "cgroup.procs").exists():
        return 1
    return None


@dataclass
class Cage:
    """The cgroup(s) holding one command's processes."""

    version: int
    directories: list[Path] = field(default_factory=list)
    memory_dir: Path | None = None

    @classmethod
    def create(
        cls, prefix: str, memory_mb: int, max_processes: int, cpus: float | None = None
    ) -> Cage | None:
        """None when no cgroup can be made here (not root, no controllers): the caller then relies on
        rlimits alone and says so."""
        version = cgroup_version()
        if version is None:
            return None
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        cage = cls(version)
        try:
            if version == 2:
                cage._create_v2(name, memory_mb, max_processes, cpus)
            else:
                cage._create_v1(name, memory_mb, max_processes, cpus)
        except OSError:
            cage.remove()
            return None
        return cage

    def _create_v1(self, name: str, memory_mb: int, max_processes: int, cpus: float | None) -> None:
        wanted: list[tuple[str, dict[str, str]]] = [
            ("memory", {"memory.limit_in_bytes": str(memory_mb * 1024 * 1024)}),
            ("pids", {"pids.max": str(max_processes)}),
        ]
        if cpus:
            wanted.append(
                (
                    "cpu",
                    {
                        "cpu.cfs_period_us": str(CPU_PERIOD_US),
                        "cpu.cfs_quota_us": str(int(CPU_PERIOD_US * cpus)),
                    },
                )
            )
        for controller, settings in wanted:
            own = _own_path(controller)
            base = CGROUP_ROOT / controller
            if own is None or not (base / "cgroup.procs").exists():
                raise OSError(f"no {controller} cgroup")
            directory = base / own.lstrip("/") / name
            directory.mkdir()
            self.directories.append(directory)
            for key, value in settings.items():
                (directory / key).write_text(value)
            if controller == "memory":
                self.memory_dir = directory

    def _create_v2(self, name: str, memory_mb: int, max_processes: int, cpus: float | None) -> None:
        # A parent cgroup of our own under the root, whose subtree has the controllers enabled (a
        # non-root cgroup with processes in it cannot hand controllers down: "no internal processes").
        parent = CGROUP_ROOT / "launchdeck"
        parent.mkdir(exist_ok=True)
        available = (parent / "cgroup.controllers").read_text().split()
        enable = [c for c in ("memory", "pids", "cpu") if c in available]
        if "memory" not in enable or "pids" not in enable:
            raise OSError("the memory and pids controllers are not available to launchdeck's cgroup")
        (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in enable))
        directory = parent / name
        directory.mkdir()
        self.directories.append(directory)
        self.memory_dir = directory
        (directory / "memory.max").write_text(str(memory_mb * 1024 * 1024))
        with contextlib.suppress(OSError):
            (directory / "memory.swap.max").write_text("0")
        (directory / "pids.max").write_text(str(max_processes))
        if cpus and "cpu" in enable:
            (directory / "cpu.max").write_text(f"{int(CPU_PERIOD_US * cpus)} {CPU_PERIOD_US}")

    @property
    def procs_files(self) -> list[str]:
        return [str(directory / "cgroup.procs") for directory in self.directories]

    def env(self) -> dict[str, str]:
        return {"LAUNCHDECK_CGROUP_PROCS": " ".join(self.procs_files)}

    def pids(self) -> set[int]:
        found: set[int] = set()
        for directory in self.directories:
            with contextlib.suppress(OSError, ValueError):
                found |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
        return found

    def kill_all(self) -> None:
        if self.version == 2 and self.directories:
            with contextlib.suppress(OSError):
                (self.directories[0] / "cgroup.kill").write_text("1")
        for _ in range(20):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def oom_killed(self) -> bool:
        if self.memory_dir is None:
            return False
        with contextlib.suppress(OSError, ValueError):
            if self.version == 2:
                for line in (self.memory_dir / "memory.events").read_text().splitlines():
                    if line.startswith("oom_kill ") and int(line.split()[1]) > 0:
                        return True
                return False
            for line in (self.memory_dir / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill ") and int(line.split()[1]) > 0:
                    return True
        return False

    def peak_memory_mb(self) -> float | None:
        if self.memory_dir is None:
            return None
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        with contextlib.suppress(OSError, ValueError):
            return int((self.memory_dir / name).read_text()) / 1024 / 1024
        return None

    def remove(self) -> None:
        """Kills what is left and deletes the cgroups; killed processes take a moment to leave them."""
        remaining = list(reversed(self.directories))
        for _ in range(100):
            self.kill_all()
            for directory in list(remaining):
                try:
                    directory.rmdir()
                    remaining.remove(directory)
                except FileNotFoundError:
                    remaining.remove(directory)
                except OSError:
                    pass  # EBUSY until the last process has exited
            if not remaining:
                break
            time.sleep(0.05)
        self.directories = remaining
