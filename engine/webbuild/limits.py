"""rlimits for one sandboxed command (the cgroup, v2 or v1, is ``engine.cgroups.Cage``)."""

from __future__ import annotations

import resource


def prlimit_args(*, memory_mb: int, max_processes: int | None, file_size_mb: int = 4096) -> list[str]:
    """The `prlimit` prefix: always no core dumps, bounded files; memory/processes when no cgroup."""
    _, hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = 16384 if hard_nofile == resource.RLIM_INFINITY else min(16384, hard_nofile)
    args = ["/usr/bin/prlimit", "--core=0", f"--nofile={nofile}", f"--fsize={file_size_mb * 1024 * 1024}"]
    # RLIMIT_DATA, not RLIMIT_AS: V8 and WebAssembly reserve far more address space than they use.
    args.append(f"--data={memory_mb * 1024 * 1024}")
    if max_processes is not None:
        args.append(f"--nproc={max_processes}")
    return [*args, "--"]
