"""Run app servers in a sandbox: generated code is untrusted, and the engine's workspace next to it holds
the store, the vault key and the other apps.

Each server (engine running as root, the supported multi-tenant setup):

* runs as its app's own unprivileged host uid (``UID_BASE`` + n, one per app, kept in
  ``edge/uids.json``), with no capabilities and ``no_new_privs`` (``setpriv``), so inside and outside
  its namespaces it is nobody in particular: no root mapped into a user namespace;
* in ``bwrap --unshare-all --new-session --die-with-parent``: its own mount, pid, ipc, uts, user and
  network namespaces. The network namespace has only a loopback: no route to the host's loopback
  services (PostgreSQL, the engine API, other apps), nor anywhere else;
* sees only ``/usr`` (and the ``/lib*`` links), the TLS roots, its deployment's build output read-only
  at ``/app``, an empty ``/tmp``, and, if it has a local libSQL database, that app's database folder
  (chosen by the engine from the app's name, never from a URL). No ``--ro-bind / /``;
* is reached by the edge over a Unix socket in a folder it owns (``launcher.js`` pipes it to the
  app's port inside), and reaches a local PostgreSQL only through a forwarder that admits its own
  role only (``engine.edge.pgproxy``), and its own public origin (its host names, nothing else) only
  through a forwarder to the edge (``engine.edge.origin``);
* is started with a fixed environment: ``bwrap``, ``setpriv`` and friends by absolute path with
  ``PATH=/usr/bin:/bin`` and nothing else; the app's variables reach only the inside, in a file;
* runs in its own cgroup (memory, processes, CPU; v2 or v1) with rlimits as a backstop.

bwrap, run by an unprivileged uid, cannot open paths under a workspace closed to other users, so the
engine first bind-mounts the few host folders the server needs onto mount points in a private mount
namespace (``unshare --mount``, root), then drops to the app's uid and starts bwrap.

``none`` (no sandbox) is accepted only in an explicit single-tenant mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from engine.cgroups import Cage, join_prefix
from engine.edge.origin import hosts_file
from engine.errors import ConfigError
from engine.jail import (
    APP_SERVER,
    NODE,
    PRLIMIT,
    SYSTEM_PATH,
    bwrap_works,
    drop_to,
    memfd,
    namespaces,
    privileged,
)

log = logging.getLogger("launchdeck.edge")

MODES = ("auto", "bwrap", "none")
UID_BASE = 200_000
UID_COUNT = 100_000
INSIDE_PORT = 3000
INSIDE_PG_PORT = 5432
INSIDE_RUN = "/run/launchdeck"
LAUNCHER_JS = Path(__file__).with_name("launcher.js")
SINGLE_TENANT_HINT = (
    "set LAUNCHDECK_SINGLE_TENANT=true only if every app this engine runs is your own (one tenant)"
)


def resolve_mode(mode: str, single_tenant: bool = False) -> str:
    """'auto' and 'bwrap' -> 'bwrap', which must work; 'none' only in single-tenant mode. The engine
    refuses to start rather than run untrusted servers without a sandbox."""
    if mode not in MODES:
        raise ConfigError(f"edge sandbox must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        if not single_tenant:
            raise ConfigError(
                "LAUNCHDECK_EDGE_SANDBOX=none would run every app server as the engine's own user with "
                "access to the workspace (vault key, operator token, other apps' data); " + SINGLE_TENANT_HINT
            )
        return "none"
    if bwrap_works():
        return "bwrap"
    if single_tenant and mode == "auto":
        log.warning("bubblewrap is not usable here: app servers run without a sandbox (single-tenant mode)")
        return "none"
    raise ConfigError(
        "app servers run untrusted code and need a sandbox, but bubblewrap does not work here "
        "(apt-get install bubblewrap util-linux; the kernel must allow unprivileged user namespaces: "
        "sysctl kernel.unprivileged_userns_clone=1); the engine will not start app servers without "
        "one. " + SINGLE_TENANT_HINT
    )


def run_root(workspace: Path) -> Path:
    """Where server sockets and mount points live: a short path (a Unix socket path has at most 107
    bytes), one per workspace, closed to listing (0711)."""
    digest = hashlib.sha256(str(workspace.resolve()).encode()).hexdigest()[:10]
    base = Path("/run/launchdeck") if privileged() and os.access("/run", os.W_OK) else None
    if base is None:
        base = Path(tempfile.gettempdir()) / f"launchdeck-{os.geteuid()}"
    root = base / digest
    root.mkdir(parents=True, exist_ok=True)
    for folder in (base, root):
        folder.chmod(0o711)
    return root


class UidBook:
    """One host uid per app, never reused while the record exists: files an app's server wrote (its
    database folder) stay its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def uid(self, app: str) -> int:
        with self._lock:
            try:
                table: dict[str, int] = json.loads(self.path.read_text())
            except (FileNotFoundError, ValueError):
                table = {}
            if app in table:
                return table[app]
            used = set(table.values())
            start = int(hashlib.sha256(app.encode()).hexdigest()[:8], 16) % UID_COUNT
            for offset in range(UID_COUNT):
                candidate = UID_BASE + (start + offset) % UID_COUNT
                if candidate not in used:
                    break
            else:
                raise ConfigError(f"no free app uid left in {UID_BASE}..{UID_BASE + UID_COUNT - 1}")
            table[app] = candidate
            partial = self.path.with_suffix(".partial")
            partial.write_text(json.dumps(table, indent=1, sort_keys=True))
            partial.replace(self.path)
            return candidate


@dataclass
class Limits:
    memory_mb: int = 1024
    max_processes: int = 256
    cpus: float | None = 1.0


@dataclass
class Launch:
    """One start of a sandboxed server: its argv, environment and inherited fds, and its cgroup."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: list[int]
    cage: Cage | None
    socket_path: Path

    def close_fds(self) -> None:
        for fd in self.pass_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pass_fds = []


@dataclass
class ServerSandbox:
    """How to start one deployment's server in its sandbox (see the module's docstring)."""

    key_dir: Path  # run_root()/<app>--<deployment hash>: mount points and the socket folder
    server_dir: Path
    uid: int | None  # None: the engine is not root, bwrap runs as the engine's (unprivileged) uid
    writable: list[Path] = field(default_factory=list)  # folders bound read-write at the same path
    pg_socket_dir: Path | None = None
    pg_port: int = INSIDE_PG_PORT  # the server's port: the app's DATABASE_URL works inside and out
    # The app's own public origin (engine.edge.origin): its forwarder's socket folder, the edge's port
    # and the host names that resolve to loopback inside.
    origin_socket_dir: Path | None = None
    origin_port: int | None = None
    origin_hosts: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)

    @property
    def socket_dir(self) -> Path:
        return self.key_dir / "sock"

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / "http.sock"

    def prepare(self, command: list[str], env: dict[str, str]) -> Launch:
        self.key_dir.mkdir(parents=True, exist_ok=True)
        self.key_dir.chmod(0o711)
        self.socket_dir.mkdir(exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        if self.uid is not None:
            os.chown(self.socket_dir, self.uid, self.uid)
        self.socket_dir.chmod(0o700)
        if (self.server_dir / ".next").is_dir():  # Next writes its ISR cache here: a tmpfs inside
            (self.server_dir / ".next" / "cache").mkdir(exist_ok=True)

        binds: list[tuple[Path, str, bool]] = []  # (host source, inside, writable)
        mounts: list[tuple[Path, Path]] = []  # privileged: host source -> mount point under key_dir
        sources = [(self.server_dir, "/app", False)] + [(p, str(p), True) for p in self.writable]
        for number, (source, inside, rw) in enumerate(sources):
            if self.uid is not None:
                point = self.key_dir / f"m{number}"
                point.mkdir(exist_ok=True)
                mounts.append((source, point))
                binds.append((point, inside, rw))
            else:
                binds.append((source, inside, rw))

        config: dict[str, object] = {
            "command": command,
            "env": {**env, "HOME": "/tmp", "PATH": SYSTEM_PATH},
            # the app's port inside, never the edge's (forwarded inside to the app's own origin)
            "port": INSIDE_PORT if self.origin_port != INSIDE_PORT else INSIDE_PORT + 1,
            "socket": f"{INSIDE_RUN}/sock/http.sock",
        }
        args = [*namespaces(APP_SERVER), "--tmpfs", "/tmp"]
        for source, inside, rw in binds:
            args += ["--bind" if rw else "--ro-bind", str(source), inside]
        if (self.server_dir / ".next" / "cache").is_dir():
            args += ["--tmpfs", "/app/.next/cache"]
        args += ["--bind", str(self.socket_dir), f"{INSIDE_RUN}/sock"]
        if self.pg_socket_dir is not None:
            args += ["--bind", str(self.pg_socket_dir), f"{INSIDE_RUN}/pg"]
            config.update(pg_socket=f"{INSIDE_RUN}/pg/pg.sock", pg_port=self.pg_port)
        if self.origin_socket_dir is not None and self.origin_port is not None:
            args += ["--bind", str(self.origin_socket_dir), f"{INSIDE_RUN}/origin"]
            config.update(origin_socket=f"{INSIDE_RUN}/origin/origin.sock", origin_port=self.origin_port)
        launcher_fd = memfd("launcher", LAUNCHER_JS.read_bytes())
        config_fd = memfd("config", json.dumps(config).encode())
        hosts_fd = memfd("hosts", hosts_file(self.origin_hosts if self.origin_socket_dir else []))
        args += [
            "--ro-bind-data", str(hosts_fd), "/etc/hosts",
            "--ro-bind-data", str(launcher_fd), f"{INSIDE_RUN}/launcher.js",
            "--ro-bind-data", str(config_fd), f"{INSIDE_RUN}/config.json",
            "--chdir", "/app", "--clearenv", "--setenv", "PATH", SYSTEM_PATH, "--setenv", "HOME", "/tmp",
            "--", NODE, f"{INSIDE_RUN}/launcher.js", f"{INSIDE_RUN}/config.json",
        ]  # fmt: skip

        cage = Cage.create(
            "launchdeck-server", self.limits.memory_mb, self.limits.max_processes, self.limits.cpus
        )
        limits = [PRLIMIT, "--core=0", "--nofile=16384"]
        if self.uid is not None:  # per uid, and each app has its own: a pids cap that needs no cgroup
            limits.append(f"--nproc={self.limits.max_processes}")
        if cage is None:
            limits.append(f"--data={self.limits.memory_mb * 1024 * 1024}")
        argv = [*limits, "--"]
        if self.uid is not None:
            argv += drop_to(self.uid, mounts)
        argv += args
        env = {"PATH": SYSTEM_PATH}
        if cage is not None:
            argv = [*join_prefix("launchdeck-server"), *argv]
            env.update(cage.env())
        return Launch(argv, env, [hosts_fd, launcher_fd, config_fd], cage, self.socket_path)


def give_to(path: Path, uid: int) -> None:
    """Make an app's database folder (and the files in it) its server's own. The folder's content is
    the tenant's: links are never followed, and a file with other hard links (which could be a host
    file linked in) is left alone."""
    import stat

    if path.is_symlink():
        return
    os.lchown(path, uid, uid)
    for child in path.iterdir():
        info = child.lstat()
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1 and info.st_uid != uid:
            os.lchown(child, uid, uid)


def remove_run_folder(key_dir: Path) -> None:
    """A stopped server's socket folder and mount points. The mount points are only ever mounted in the
    server's private mount namespace, so on the host they are empty: ``rmdir``, never a recursive
    delete that could follow a mount into the deployment or the database."""
    shutil.rmtree(key_dir / "sock", ignore_errors=True)
    if key_dir.is_dir():
        for point in key_dir.glob("m*"):
            with contextlib.suppress(OSError):
                point.rmdir()
        with contextlib.suppress(OSError):
            key_dir.rmdir()
