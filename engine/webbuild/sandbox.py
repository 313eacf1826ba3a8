"""Runs one command of an untrusted build in a sandbox.

bubblewrap where the kernel allows it: own mount, pid, user, ipc, uts and network namespaces, only /usr
and a few /etc files read-only (TLS roots, never /etc/ssl/private or /etc/npmrc), the working copy, its
own /tmp and its npm cache writable; nothing else of the machine (workspace, store, vault key) exists
inside. With the engine running as root the build runs as the app's own unprivileged host uid (the
same as its server's), not as root mapped into a user namespace. The network namespace has only a
loopback: the npm registry is reached through the engine's registry-only egress proxy
(``engine.webbuild.egress``) and a local PostgreSQL through the app's role-checking forwarder, both
Unix sockets piped to loopback ports inside by ``forward.js``. Otherwise a separate unprivileged user
that file permissions keep out of the workspace (one per app when the caller gives a uid).
Both: a clean environment with only the app's variables, memory and process limits, a timeout that
kills every process of the command.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from engine.cgroups import Cage, join_prefix
from engine.errors import TerminalError
from engine.jail import BUILD, SETPRIV, bwrap_works, drop_to, memfd, namespaces
from engine.procs import tracked
from engine.webbuild.limits import prlimit_args

SandboxKind = Literal["bwrap", "user"]
BUILD_USER = "launchdeck-build"
INSIDE_WORKDIR = "/build"
INSIDE_CACHE = "/cache/npm"
INSIDE_NET = "/run/launchdeck/net"
FORWARD_JS = Path(__file__).with_name("forward.js")
EGRESS_PORT = 3128


@dataclass
class RunOutcome:
    returncode: int
    timed_out: bool
    seconds: float
    oom_killed: bool
    peak_memory_mb: float | None
    disk_exceeded: bool = False


def choose_sandbox() -> SandboxKind:
    """bwrap when it works here; `LAUNCHDECK_BUILD_SANDBOX=user` forces the unprivileged-user fallback
    (no network isolation: for a single tenant), which is also the fallback in single-tenant mode."""
    forced = os.environ.get("LAUNCHDECK_BUILD_SANDBOX", "").strip().lower()
    if forced in ("bwrap", "user"):
        if forced == "bwrap" and not bwrap_works():
            raise TerminalError(
                "LAUNCHDECK_BUILD_SANDBOX=bwrap but bubblewrap does not work here "
                "(apt-get install bubblewrap; the kernel must allow user namespaces)"
            )
        return forced  # type: ignore[return-value]
    if bwrap_works():
        return "bwrap"
    if os.environ.get("LAUNCHDECK_SINGLE_TENANT", "").strip().lower() in ("1", "true", "yes"):
        return "user"
    # Without bwrap a build shares the host's network (PostgreSQL, the engine API) and file system
    # namespace: not a boundary between tenants (review M8).
    raise TerminalError(
        "builds run untrusted code and need bubblewrap, which does not work here (apt-get install "
        "bubblewrap; the kernel must allow unprivileged user namespaces); the unprivileged-user fallback "
        "is only for one tenant: set LAUNCHDECK_SINGLE_TENANT=true or LAUNCHDECK_BUILD_SANDBOX=user"
    )


def bwrap_argv(
    argv: list[str],
    *,
    workdir: Path,
    tmp: Path,
    npm_cache: Path,
    extra_binds: list[Path] | None = None,
    net_dir: Path | None = None,
    forward_fd: int | None = None,
) -> list[str]:
    """The bwrap command line. The environment is not on it (command lines are world-readable in
    /proc): the app's variables travel in a file (see ``run_sandboxed``). No ``--share-net``: the
    build's network is ``net_dir``'s sockets, piped to loopback ports by ``forward.js``."""
    args = [
        *namespaces(BUILD),
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
    if os.geteuid() != 0:  # unprivileged engine: keep the old inside ids
        args[1:1] = ["--uid", "1000", "--gid", "1000"]
    for path in extra_binds or []:  # the app's own database folder, at the path its URL names
        args += ["--bind", str(path), str(path)]
    if net_dir is not None:
        args += ["--bind", str(net_dir), INSIDE_NET]
    if forward_fd is not None:
        args += ["--ro-bind-data", str(forward_fd), "/run/launchdeck/forward.js"]
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


def _chown_tree(root: Path, uid: int, gid: int, skip: tuple[str, ...] = ()) -> None:
    os.chown(root, uid, gid)
    for directory, dirnames, filenames in os.walk(root):
        if directory == str(root):  # a skipped folder is handed over itself, not walked
            for name in set(skip) & set(dirnames):
                os.lchown(os.path.join(directory, name), uid, gid)
            dirnames[:] = [name for name in dirnames if name not in skip]
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            # only what is not the app's yet: a chown, even to the same owner, copies a file of a
            # node_modules overlay (deps_cache.py) up into the build's layer
            if (info := os.lstat(path)).st_uid != uid or info.st_gid != gid:
                os.lchown(path, uid, gid)


def _tree_size(paths: list[Path]) -> int:
    total = 0
    stack = [str(p) for p in paths]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
    return total


class DiskWatch:
    """A disk quota where the file system has none: every few seconds, the size of the folders a build
    writes; over the quota, the build's process group is killed."""

    def __init__(self, paths: list[Path], quota_mb: int, process: subprocess.Popen[bytes]) -> None:
        self.paths, self.quota, self.process = paths, quota_mb * 1024 * 1024, process
        self.exceeded = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="build-disk-quota", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(3.0):
            if _tree_size(self.paths) > self.quota:
                self.exceeded = True
                _kill_group(self.process)
                return

    def stop(self) -> None:
        self._stop.set()


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
    uid: int | None = None,
    net_dir: Path | None = None,
    forward: dict[int, str] | None = None,
    disk_quota_mb: int | None = None,
    owned: tuple[str, ...] = (),
) -> RunOutcome:
    """Runs ``argv`` in the sandbox with ``workdir`` as its current folder, output appended to ``log``.

    ``env`` is the complete environment (paths as seen inside: `/build`, `/tmp`, `/cache/npm` for bwrap).
    ``uid``: the host uid to run as (an engine running as root; default nobody). ``net_dir``: a folder
    of Unix sockets bound at /run/launchdeck/net, and ``forward`` the loopback ports inside that pipe
    to them (``{3128: "egress.sock"}``). ``disk_quota_mb``: what workdir, /tmp and the npm cache may hold.
    ``owned``: folders of ``workdir`` already the build user's (an attached node_modules, installed as
    it), not walked to hand the working copy to that user.
    """
    privileged = os.geteuid() == 0
    run_uid = (uid if uid is not None else 65534) if privileged else None
    cage = Cage.create("launchdeck-build", memory_mb, max_processes)
    if cage is not None:  # the cgroup is the real cap; the rlimit only stops a runaway single process
        limits = prlimit_args(memory_mb=memory_mb * 2, max_processes=None)
    else:
        nproc = max_processes if kind == "user" or run_uid is not None else None
        limits = prlimit_args(memory_mb=memory_mb, max_processes=nproc)
    # The app's variables travel in a file in the build's own /tmp, sourced by the first shell inside the
    # sandbox: never on a command line (world-readable in /proc), never in the environment of the
    # privileged helpers outside (an app's LD_PRELOAD must not reach them).
    bad = [key for key in env if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)]
    if bad:
        raise ValueError(f"not environment variable names: {bad}")
    env_file = tmp / ".launchdeck-env"
    forwards = " ".join(f"{port}={INSIDE_NET}/{name}" for port, name in (forward or {}).items())
    env_lines = {**env, "LAUNCHDECK_FORWARD": forwards} if kind == "bwrap" and forwards else env
    env_file.write_text(
        "".join(f"{key}={shlex.quote(value)}\n" for key, value in env_lines.items()), encoding="utf-8"
    )
    env_file.chmod(0o600)
    inside_env_file = "/tmp/.launchdeck-env" if kind == "bwrap" else str(env_file)
    load_env = (
        'unset LAUNCHDECK_CGROUP_PROCS; set -a; . "$0"; set +a; rm -f "$0"; '
        'if [ -n "$LAUNCHDECK_FORWARD" ]; then '
        "/usr/bin/node /run/launchdeck/forward.js /tmp/.launchdeck-forward $LAUNCHDECK_FORWARD & "
        "i=0; while [ ! -e /tmp/.launchdeck-forward ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "
        'fi; unset LAUNCHDECK_FORWARD; exec "$@"'
    )
    argv = ["/bin/sh", "-c", load_env, inside_env_file, *argv]
    popen_env = {"PATH": "/usr/bin:/bin"}
    pass_fds: list[int] = []
    mount_root: Path | None = None
    if kind == "bwrap":
        if run_uid is not None:
            for path in (workdir, tmp, npm_cache, *(p for p in [net_dir] if p)):
                if path == npm_cache and path.stat().st_uid == run_uid:
                    continue  # this app's cache, already its own (walking it is slow)
                _chown_tree(path, run_uid, run_uid, owned if path == workdir else ())
        forward_fd = None
        if forwards:
            forward_fd = memfd("forward", FORWARD_JS.read_bytes())
            pass_fds.append(forward_fd)
        if run_uid is not None:
            # bwrap runs as run_uid and cannot open paths under folders closed to it: mount points
            mount_root = Path(tempfile.mkdtemp(prefix="launchdeck-mounts-"))
            mount_root.chmod(0o711)
            sources = [workdir, tmp, npm_cache, *(extra_binds or []), *(p for p in [net_dir] if p)]
            mounts = []
            for number, source in enumerate(sources):
                point = mount_root / str(number)
                point.mkdir()
                mounts.append((source, point))
            points = [p for _, p in mounts]
            count = len(extra_binds or [])
            inner = drop_to(run_uid, mounts) + bwrap_argv(
                argv,
                workdir=points[0],
                tmp=points[1],
                npm_cache=points[2],
                extra_binds=[],
                net_dir=points[3 + count] if net_dir else None,
                forward_fd=forward_fd,
            )
            # the database folders go back to the paths their URLs name
            binds = []
            for source, point in zip(extra_binds or [], points[3 : 3 + count], strict=True):
                binds += ["--bind", str(point), str(source)]
            split = inner.index("--clearenv")
            inner[split:split] = binds
        else:
            inner = bwrap_argv(
                argv,
                workdir=workdir,
                tmp=tmp,
                npm_cache=npm_cache,
                extra_binds=extra_binds or [],
                net_dir=net_dir,
                forward_fd=forward_fd,
            )
        cwd = "/"
    else:
        build_uid, gid = (uid, uid) if uid is not None and privileged else build_user()
        for path in (workdir, tmp, npm_cache):
            blocked = [p for p in path.parents if not p.stat().st_mode & 0o001]
            if blocked:
                raise TerminalError(
                    f"the build user cannot reach {path}: {blocked[0]} is closed to other users; keep "
                    "working copies and build scratch in a folder others may pass through (e.g. /var/tmp)"
                )
            _chown_tree(path, build_uid, gid)
            os.chmod(path, 0o700)
        inner = [SETPRIV, f"--reuid={build_uid}", f"--regid={gid}", "--clear-groups", "--", *argv]
        cwd = str(workdir)
    full = [*join_prefix(), *limits, *inner]
    popen_env["LAUNCHDECK_CGROUP_PROCS"] = " ".join(cage.procs_files) if cage else ""

    started = time.monotonic()
    timed_out = False
    watch: DiskWatch | None = None
    try:
        process = subprocess.Popen(
            full,
            cwd=cwd,
            env=popen_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )
    finally:
        for fd in pass_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    if disk_quota_mb:
        watch = DiskWatch([workdir, tmp, npm_cache], disk_quota_mb, process)
    with tracked(process.pid):
        try:
            returncode = process.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
            returncode = process.wait()
        finally:
            if watch is not None:
                watch.stop()
            if process.poll() is None:
                _kill_group(process)
                process.wait()
            oom = cage.oom_killed() if cage else False
            peak = cage.peak_memory_mb() if cage else None
            if cage:
                cage.remove()  # kills whatever is left, then deletes the cgroups
            if mount_root is not None:  # empty mount points (the mounts lived in the private namespace)
                for point in mount_root.iterdir():
                    with contextlib.suppress(OSError):
                        point.rmdir()
                with contextlib.suppress(OSError):
                    mount_root.rmdir()
    outcome = RunOutcome(returncode, timed_out, time.monotonic() - started, oom, peak)
    outcome.disk_exceeded = watch is not None and watch.exceeded
    return outcome


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
