"""Memory and process limits for one sandboxed command: a cgroup where the kernel lets us make one
(cgroup v1 memory + pids here), else rlimits."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_cgroup_path(controller: str) -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


@dataclass
class CgroupCage:
    """A v1 memory + pids cgroup pair holding every process of one command."""

    directories: list[Path] = field(default_factory=list)
    memory_dir: Path | None = None

    @classmethod
    def create(cls, memory_mb: int, max_processes: int) -> CgroupCage | None:
        name = f"launchdeck-build-{uuid.uuid4().hex[:12]}"
        cage = cls()
        try:
            for controller, settings in (
                ("memory", {"memory.limit_in_bytes": str(memory_mb * 1024 * 1024)}),
                ("pids", {"pids.max": str(max_processes)}),
            ):
                own = _own_cgroup_path(controller)
                base = CGROUP_ROOT / controller
                if own is None or not (base / "cgroup.procs").exists():
                    raise OSError(f"no {controller} cgroup")
                directory = base / own.lstrip("/") / name
                directory.mkdir()
                cage.directories.append(directory)
                for key, value in settings.items():
                    (directory / key).write_text(value)
                if controller == "memory":
                    cage.memory_dir = directory
        except OSError:
            cage.remove()
            return None
        return cage

    @property
    def procs_files(self) -> list[str]:
        return [str(directory / "cgroup.procs") for directory in self.directories]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for directory in self.directories:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
        return found

    def kill_all(self) -> None:
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
            for line in (self.memory_dir / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill ") and int(line.split()[1]) > 0:
                    return True
        return False

    def peak_memory_mb(self) -> float | None:
        if self.memory_dir is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return int((self.memory_dir / "memory.max_usage_in_bytes").read_text()) / 1024 / 1024
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


def prlimit_args(*, memory_mb: int, max_processes: int | None, file_size_mb: int = 4096) -> list[str]:
    """The `prlimit` prefix: always no core dumps, bounded files; memory/processes when no cgroup."""
    _, hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = 16384 if hard_nofile == resource.RLIM_INFINITY else min(16384, hard_nofile)
    args = ["prlimit", "--core=0", f"--nofile={nofile}", f"--fsize={file_size_mb * 1024 * 1024}"]
    # RLIMIT_DATA, not RLIMIT_AS: V8 and WebAssembly reserve far more address space than they use.
    args.append(f"--data={memory_mb * 1024 * 1024}")
    if max_processes is not None:
        args.append(f"--nproc={max_processes}")
    return [*args, "--"]
