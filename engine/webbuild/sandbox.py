"""Runs one command of an untrusted build in a sandbox.

bubblewrap where the kernel allows it: own mount, pid, user, ipc and uts namespaces, the network kept
for the npm registry, only /usr and a few /etc files read-only, the working copy, its own /tmp and its
npm cache writable; nothing else of the machine (workspace, store, vault key) exists inside. Otherwise a
separate unprivileged user (`launchdeck-build`) that file permissions keep out of the workspace.
Both: a clean environment with only the app's variables, memory and process limits, a timeout that
kills every process of the command.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from engine.errors import TerminalError
from engine.webbuild.limits import CgroupCage, prlimit_args

SandboxKind = Literal["bwrap", "user"]
BUILD_USER = "launchdeck-build"
INSIDE_WORKDIR = "/build"
INSIDE_CACHE = "/cache/npm"
# Read-only system files a Node build needs: DNS, TLS roots, users, npm's global config.
_ETC_FILES = [
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "ssl",
    "ca-certificates",
    "passwd",
    "group",
    "npmrc",
    "alternatives",
    "localtime",
]


@dataclass
class RunOutcome:
    returncode: int
    timed_out: bool
    seconds: float
    oom_killed: bool
    peak_memory_mb: float | None


@functools.cache
def bwrap_usable() -> bool:
    if shutil.which("bwrap") is None:
        return False
    probe = ["bwrap", "--unshare-all", "--share-net", "--die-with-parent", *_root_layout(), "/usr/bin/true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose_sandbox() -> SandboxKind:
    """bwrap when it works here; `LAUNCHDECK_BUILD_SANDBOX=user` forces the unprivileged-user fallback."""
    forced = os.environ.get("LAUNCHDECK_BUILD_SANDBOX", "").strip().lower()
    if forced in ("bwrap", "user"):
        if forced == "bwrap" and not bwrap_usable():
            raise TerminalError(
                "LAUNCHDECK_BUILD_SANDBOX=bwrap but bubblewrap does not work here "
                "(apt-get install bubblewrap; the kernel must allow user namespaces)"
            )
        return forced  # type: ignore[return-value]
    return "bwrap" if bwrap_usable() else "user"


def _root_layout() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    for name in _ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def bwrap_argv(
    argv: list[str], *, workdir: Path, tmp: Path, npm_cache: Path, extra_binds: list[Path] | None = None
) -> list[str]:
    """The bwrap command line. The environment is not on it (command lines are world-readable in
    /proc): bwrap hands its own environment, which the caller sets to the app's variables only, on."""
    args = [
        "bwrap",
        "--unshare-all",
        "--share-net",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--hostname",
        "build",
        *_root_layout(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--bind",
        str(workdir),
        INSIDE_WORKDIR,
        "--bind",
        str(tmp),
        "/tmp",
        "--bind",
        str(npm_cache),
        INSIDE_CACHE,
        "--chdir",
        INSIDE_WORKDIR,
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
    ]
    for path in extra_binds or []:  # e.g. the app's own database file, at the path its URL names
        args += ["--bind", str(path), str(path)]
    return [*args, "--", *argv]


def build_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(BUILD_USER)
    except KeyError:
        if os.geteuid() != 0:
            raise TerminalError(
                f"no build sandbox: bubblewrap does not work and user {BUILD_USER!r} does not exist; "
                "install bubblewrap, or create the user (useradd --system launchdeck-build)"
            ) from None
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", BUILD_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(BUILD_USER)
    return entry.pw_uid, entry.pw_gid


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(directory, name), uid, gid)


def run_sandboxed(
    argv: list[str],
    *,
    kind: SandboxKind,
    workdir: Path,
    tmp: Path,
    npm_cache: Path,
    env: dict[str, str],
    timeout: float,
    memory_mb: int,
    max_processes: int,
    log: IO[bytes],
    extra_binds: list[Path] | None = None,
) -> RunOutcome:
    """Runs ``argv`` in the sandbox with ``workdir`` as its current folder, output appended to ``log``.

    ``env`` is the complete environment (paths as seen inside: `/build`, `/tmp`, `/cache/npm` for bwrap).
    """
    cage = CgroupCage.create(memory_mb, max_processes)
    if cage is not None:  # the cgroup is the real cap; the rlimit only stops a runaway single process
        limits = prlimit_args(memory_mb=memory_mb * 2, max_processes=None)
    else:
        limits = prlimit_args(memory_mb=memory_mb, max_processes=max_processes if kind == "user" else None)
    # The app's variables travel in a file in the build's own /tmp, sourced by the first shell inside the
    # sandbox: never on a command line (world-readable in /proc), never in the environment of the
    # privileged helpers outside (an app's LD_PRELOAD must not reach them).
    bad = [key for key in env if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)]
    if bad:
        raise ValueError(f"not environment variable names: {bad}")
    env_file = tmp / ".launchdeck-env"
    env_file.write_text(
        "".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items()), encoding="utf-8"
    )
    env_file.chmod(0o600)
    inside_env_file = "/tmp/.launchdeck-env" if kind == "bwrap" else str(env_file)
    load_env = 'unset LAUNCHDECK_CGROUP_PROCS; set -a; . "$0"; set +a; rm -f "$0"; exec "$@"'
    argv = ["/bin/sh", "-c", load_env, inside_env_file, *argv]
    popen_env = {"PATH": "/usr/bin:/bin"}
    if kind == "bwrap":
        inner = bwrap_argv(argv, workdir=workdir, tmp=tmp, npm_cache=npm_cache, extra_binds=extra_binds or [])
        cwd = "/"
    else:
        uid, gid = build_user()
        for path in (workdir, tmp, npm_cache):
            blocked = [p for p in path.parents if not p.stat().st_mode & 0o001]
            if blocked:
                raise TerminalError(
                    f"the build user cannot reach {path}: {blocked[0]} is closed to other users; keep "
                    "working copies and build scratch in a folder others may pass through (e.g. /var/tmp)"
                )
            _chown_tree(path, uid, gid)
            os.chmod(path, 0o700)
        inner = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]
        cwd = str(workdir)
    join_cgroup = 'for p in $LAUNCHDECK_CGROUP_PROCS; do echo $$ > "$p" || exit 97; done; exec "$@"'
    full = ["/bin/sh", "-c", join_cgroup, "launchdeck-sandbox", *limits, *inner]
    popen_env["LAUNCHDECK_CGROUP_PROCS"] = " ".join(cage.procs_files) if cage else ""

    started = time.monotonic()
    timed_out = False
    process = subprocess.Popen(
        full,
        cwd=cwd,
        env=popen_env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        returncode = process.wait(timeout=max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process)
        returncode = process.wait()
    finally:
        if process.poll() is None:
            _kill_group(process)
            process.wait()
        oom = cage.oom_killed() if cage else False
        peak = cage.peak_memory_mb() if cage else None
        if cage:
            cage.remove()  # kills whatever is left, then deletes the cgroups
    return RunOutcome(returncode, timed_out, time.monotonic() - started, oom, peak)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
