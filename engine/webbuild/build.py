"""The sandboxed install and build of a transformed working copy.

result = build(workdir, {"DATABASE_URL": "file:/srv/app.db"}, timeout=600, memory_mb=2048,
               log_path=Path("build.log"))
result.server_dir / "server.js"   # Next.js standalone server (or `next start` in workdir)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.edge.pgproxy import PgForwarder
from engine.errors import BuildFailed, InputError, TransientError
from engine.files import discard_in_background
from engine.redact import redact
from engine.webbuild.deps_cache import DepsReuse
from engine.webbuild.egress import DEFAULT_HOSTS, EgressProxy
from engine.webbuild.sandbox import (
    EGRESS_PORT,
    INSIDE_CACHE,
    INSIDE_WORKDIR,
    SandboxKind,
    choose_sandbox,
    run_sandboxed,
)

LOG_TAIL_LINES = 40
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by the sandbox; an app's variables cannot replace them.
_RESERVED = {
    "PATH",
    "HOME",
    "TMPDIR",
    "PRISMA_SCHEMA_ENGINE_BINARY",
    "npm_config_cache",
    "LAUNCHDECK_CGROUP_PROCS",
    "LAUNCHDECK_FORWARD",
    "npm_config_https_proxy",
    "npm_config_proxy",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
}
# npm errors that another try may not hit: the registry or the network had a bad moment.
_NETWORK_ERRORS = re.compile(r"\b(ETIMEDOUT|ECONNRESET|EAI_AGAIN|ECONNREFUSED|ENOTFOUND|E5\d\d|E429)\b")


@dataclass
class BuildResult:
    workdir: Path
    sandbox: SandboxKind  # "bwrap" or "user" (the unprivileged-user fallback)
    # "npm ci"; "npm install" when the transform changed package.json; "already installed" on a rebuild
    # of the same working copy (node_modules matches the lockfile; only `npm ls` checks it)
    install_command: str
    lockfile_regenerated: bool
    install_seconds: float
    build_seconds: float
    seconds: float
    log_path: Path
    server_dir: Path  # run the server from here
    server_command: list[str]  # e.g. ["node", "server.js"]; give it PORT and HOSTNAME in the env
    standalone: bool
    static_dir: Path  # .next/static, served under /_next/static/
    public_dir: Path | None  # the app's public/ files, served from /
    peak_memory_mb: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    dependencies: str = ""  # the deps cache entry that holds node_modules (see ``deps_cache``)

    def detail(self) -> dict[str, Any]:
        """JSON-ready summary for the deployment journal."""
        return {
            "sandbox": self.sandbox,
            "install": self.install_command,
            "lockfile_regenerated": self.lockfile_regenerated,
            "install_seconds": self.install_seconds,
            "build_seconds": self.build_seconds,
            "seconds": self.seconds,
            "peak_memory_mb": round(self.peak_memory_mb) if self.peak_memory_mb is not None else None,
            "standalone": self.standalone,
            "server_dir": str(self.server_dir),
            "server_command": self.server_command,
            "log": str(self.log_path),
        }


def lockfile_in_sync(workdir: Path) -> bool:
    """True when package-lock.json was made from this package.json (so `npm ci` can use it)."""
    lock_path, package_path = workdir / "package-lock.json", workdir / "package.json"
    if not lock_path.is_file():
        return False
    try:
        lock = json.loads(lock_path.read_text(encoding="utf-8"))
        package = json.loads(package_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    root = (lock.get("packages") or {}).get("", {})
    return all(
        (root.get(section) or {}) == (package.get(section) or {})
        for section in ("dependencies", "devDependencies", "optionalDependencies")
    )


def dependencies_installed(workdir: Path) -> bool:
    """True when node_modules already holds exactly what package-lock.json pins (npm's hidden lockfile)."""
    hidden, lock_path = workdir / "node_modules" / ".package-lock.json", workdir / "package-lock.json"
    if not (hidden.is_file() and lockfile_in_sync(workdir)):
        return False
    try:
        installed = json.loads(hidden.read_text(encoding="utf-8")).get("packages") or {}
        locked = json.loads(lock_path.read_text(encoding="utf-8")).get("packages") or {}
    except (OSError, json.JSONDecodeError):
        return False
    for name, entry in locked.items():
        if not name:
            continue
        present = installed.get(name)
        if present is None and not entry.get("optional"):  # optional: another platform's binary
            return False
        if present is not None and present.get("version") != entry.get("version"):
            return False
    return bool(installed) and installed.keys() <= locked.keys()


def package_manager(workdir: Path) -> str:
    """npm, yarn or pnpm: the manager whose lockfile the app has (npm without one, or for bun.lock)."""
    if (workdir / "package-lock.json").is_file():
        return "npm"
    if (workdir / "pnpm-lock.yaml").is_file():
        return "pnpm"
    if (workdir / "yarn.lock").is_file():
        return "yarn"
    return "npm"


def proxy_env() -> dict[str, str]:
    """What points npm, corepack and friends inside the sandbox at the egress proxy's port."""
    proxy = f"http://127.0.0.1:{EGRESS_PORT}"
    return {
        "npm_config_https_proxy": proxy,
        "npm_config_proxy": proxy,
        "HTTPS_PROXY": proxy,
        "HTTP_PROXY": proxy,
        "NO_PROXY": "127.0.0.1,localhost",
    }


def _sandbox_env(
    app_env: dict[str, str], *, memory_mb: int, kind: SandboxKind, workdir: Path, tmp: Path, npm_cache: Path
) -> dict[str, str]:
    for key, value in app_env.items():
        if not _ENV_NAME.match(key) or "\0" in value:
            raise InputError(f"environment variable {key!r} is not a valid name=value pair")
        if key in _RESERVED:
            raise InputError(
                f"environment variable {key} is set by the build sandbox and cannot be overridden"
            )
    inside_workdir = INSIDE_WORKDIR if kind == "bwrap" else str(workdir)
    inside_tmp = "/tmp" if kind == "bwrap" else str(tmp)
    heap_mb = max(256, min(memory_mb * 3 // 4, 4096))
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": f"{inside_tmp}/home",
        "TMPDIR": inside_tmp,
        "CI": "1",
        "NEXT_TELEMETRY_DISABLED": "1",
        "CHECKPOINT_DISABLE": "1",
        "WRANGLER_SEND_METRICS": "false",
        "PRISMA_HIDE_UPDATE_MESSAGE": "1",
        # Prisma 7's CLI looks for its native schema engine at every start and would download it;
        # `generate` never runs it, so any existing file satisfies the check (see DESIGN.md).
        "PRISMA_SCHEMA_ENGINE_BINARY": "/usr/bin/true",
        "npm_config_cache": INSIDE_CACHE if kind == "bwrap" else str(npm_cache),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_prefer_offline": "true",
        "NODE_OPTIONS": f"--max-old-space-size={heap_mb}",
        "LAUNCHDECK_WORKDIR": inside_workdir,
        # corepack fetches yarn/pnpm from the npm registry (the only one the build reaches); this
        # corepack release's signing keys predate the registry's current ones, so only the registry's
        # own integrity hashes are checked.
        "COREPACK_NPM_REGISTRY": "https://registry.npmjs.org",
        "COREPACK_HOME": f"{inside_tmp}/home/corepack",
        "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
        "COREPACK_ENABLE_STRICT": "0",
        "COREPACK_INTEGRITY_KEYS": "0",
        # Yarn 2+: a node_modules folder (Next's standalone tracing needs one) and a lockfile it may update.
        "YARN_NODE_LINKER": "node-modules",
        "YARN_ENABLE_IMMUTABLE_INSTALLS": "false",
        "YARN_ENABLE_TELEMETRY": "0",
    }
    if Path("/usr/include/node/node.h").is_file():
        # node-gyp compiles native modules against this Node's own headers instead of downloading them
        # from nodejs.org (unreachable), when a package's prebuilt binary (GitHub) cannot be fetched.
        env["npm_config_nodedir"] = "/usr"
    if Path(_SYSTEM_CAS).is_file():  # npm reads /etc/npmrc's cafile; corepack (plain Node) needs this
        env["NODE_EXTRA_CA_CERTS"] = _SYSTEM_CAS
    return {**app_env, **env}


_SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|DATABASE_URL|CREDENTIAL", re.I)


def _secret_values(env: dict[str, str]) -> list[str]:
    """Values of the app's variables that must not appear in a kept log."""
    return sorted(
        (v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 6), key=len, reverse=True
    )


def _redacted(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return redact(text)


def _tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def drop_escaping_links(root: Path) -> list[str]:
    """Removes symlinks under ``root`` that point outside it; the build is untrusted and whatever serves
    or copies its output later must not be led to the machine's files. Returns what was removed."""
    removed = []
    resolved_root = root.resolve()
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory) / name
            if path.is_symlink() and not path.resolve().is_relative_to(resolved_root):
                removed.append(str(path.relative_to(root)))
                path.unlink()
    return removed


def keep_build_cache(cache: Path, kept: Path) -> None:
    """Keeps a successful build's ``.next/cache`` as the app's build cache, moved rather than copied (the
    server never needs it: a standalone server has its own folder, and ``next start`` makes a new one);
    the previous one is deleted in the background. The next build gets a copy."""
    drop_escaping_links(cache)
    kept.parent.mkdir(parents=True, exist_ok=True)
    fresh = kept.with_name(f".{kept.name}-{secrets.token_hex(4)}")
    try:
        cache.replace(fresh)
    except OSError:  # another file system
        shutil.copytree(cache, fresh, symlinks=True)
    if kept.exists():
        discard_in_background(kept, kept.parent / ".trash")
    fresh.replace(kept)


def real_folder(workdir: Path, relative: str) -> Path | None:
    """``workdir/relative`` if it is a folder reached without any symbolic link (the build is untrusted:
    a linked ``public`` or ``.next/cache`` would make the engine publish or copy whatever it points to,
    review C4); None if it does not exist. Raises BuildFailed for a link."""
    current = workdir
    for part in Path(relative).parts:
        current = current / part
        if current.is_symlink():
            raise BuildFailed(
                f"the build made {relative} a symbolic link ({part} -> {os.readlink(current)}); build "
                "outputs must be real folders",
                log_path="",
                log_tail="",
            )
    return current if current.is_dir() else None


def _publishable(workdir: Path) -> tuple[Path, list[str], bool]:
    for root in (".next", ".next/static", ".next/standalone", "public"):
        real_folder(workdir, root)
    drop_escaping_links(workdir / ".next")
    if (workdir / "public").is_dir():
        drop_escaping_links(workdir / "public")
    standalone = workdir / ".next" / "standalone"
    if (standalone / "server.js").is_file():
        # The standalone server serves static files only if they sit beside it. Links are copied as
        # links (never followed by this privileged copy) and checked again where they land.
        if (workdir / ".next" / "static").is_dir():
            shutil.copytree(
                workdir / ".next" / "static",
                standalone / ".next" / "static",
                dirs_exist_ok=True,
                symlinks=True,
            )
        if (workdir / "public").is_dir():
            shutil.copytree(workdir / "public", standalone / "public", dirs_exist_ok=True, symlinks=True)
        drop_escaping_links(standalone)
        return standalone, ["node", "server.js"], True
    return workdir, ["node", "node_modules/next/dist/bin/next", "start"], False


@contextlib.contextmanager
def scratch_folder() -> Iterator[str]:
    """A build's private temporary folder, deleted after it off the critical path."""
    folder = tempfile.mkdtemp(prefix="launchdeck-build-")
    try:
        yield folder
    finally:
        discard_in_background(Path(folder))


def build(
    workdir: Path | str,
    env: dict[str, str],
    *,
    timeout: float,
    memory_mb: int,
    log_path: Path | str,
    max_processes: int = 512,
    npm_cache: Path | str | None = None,
    build_cache: Path | str | None = None,
    script: str | None = "build",
    uid: int | None = None,
    database_folders: list[Path] | None = None,
    postgres: tuple[str, tuple[str, int]] | None = None,
    egress_hosts: tuple[str, ...] = DEFAULT_HOSTS,
    disk_quota_mb: int | None = 8192,
    deps_cache: Path | str | None = None,
    package_store: Path | str | None = None,
    dependencies: str | None = None,
) -> BuildResult:
    """Installs dependencies and builds the working copy in the sandbox.

    ``env``: the app's own variables (DATABASE_URL or TURSO_*, NEXTAUTH_*, the user's), nothing else of
    the engine's environment reaches the build. ``npm_cache``: a cache folder for this app (reused by its
    redeploys; never shared between apps); by default a fresh one inside the build's temporary folder.
    ``build_cache``: this app's Next.js build cache (.next/cache), restored before and saved after a
    successful build, for fast redeploys. ``script``: the package.json script that builds
    (``build:worker`` for a Cloudflare Workers copy, see ``engine.webbuild.workers``); None: install only,
    keeping node_modules in ``deps_cache`` (the result's ``dependencies`` names the entry, which a later
    build of the copy is given as ``dependencies``).
    ``uid``: the app's host uid (an engine running as root). ``database_folders``: the app's own local
    database folder(s), chosen by the engine (never from a URL), bound read-write at the same path so
    pages prerendered at build time read the target database. ``postgres``: (the app's role, the
    server's host and port) for a local PostgreSQL, reached through a forwarder that admits that role
    only. The network is the npm registry (``egress_hosts``) through the egress proxy, nothing else.
    ``disk_quota_mb``: what the working copy, /tmp and the npm cache may hold together.
    ``deps_cache``: this app's installed node_modules by lockfile key, reused when it matches;
    ``package_store``: the machine's verified package tarballs (see ``engine.webbuild.deps_cache``).
    Raises BuildFailed (terminal) with the log tail, or TransientError when the npm registry failed.
    """
    workdir = Path(workdir).resolve()
    log_path = Path(log_path)
    if not (workdir / "package.json").is_file():
        raise InputError(f"{workdir} is not a working copy: it has no package.json")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    kind = choose_sandbox()
    in_sync = lockfile_in_sync(workdir)
    manager = package_manager(workdir)
    if manager != "npm":  # the app's own manager, fetched from the npm registry by corepack
        install = ["corepack", manager, "install", *(["--no-frozen-lockfile"] if manager == "pnpm" else [])]
        in_sync = True  # its lockfile is the base; the manager updates it for the changed dependencies
    elif in_sync and dependencies_installed(workdir):  # a rebuild of the same copy: nothing to install
        install = ["npm", "ls", "--depth=0"]
    elif in_sync:
        install = ["npm", "ci", "--no-audit", "--no-fund"]
    else:
        install = ["npm", "install", "--no-audit", "--no-fund"]
    started = time.monotonic()

    with scratch_folder() as scratch, contextlib.ExitStack() as stack:
        Path(scratch).chmod(0o711)  # the unprivileged-user sandbox passes through to its own folders
        tmp = Path(scratch) / "tmp"
        (tmp / "home").mkdir(parents=True)
        cache = Path(npm_cache) if npm_cache else Path(scratch) / "npm-cache"
        cache.mkdir(parents=True, exist_ok=True)
        full_env = _sandbox_env(
            env, memory_mb=memory_mb, kind=kind, workdir=workdir, tmp=tmp, npm_cache=cache
        )
        if kind == "bwrap":  # the registry through the egress proxy (forward.js listens inside)
            full_env.update(proxy_env())
        # Dependencies reused (deps_cache.py): this app's node_modules for the same key, attached so that
        # the build cannot change the cached files, else npm's cache seeded from the package store.
        reuse = stack.enter_context(
            DepsReuse(
                deps_cache,
                package_store,
                workdir,
                Path(scratch),
                cache,
                kind,
                log_path,
                install_only=script is None,
                dependencies=dependencies,
            )
        )
        install = reuse.before_install(install, full_env)
        if build_cache and script and Path(build_cache).is_dir():
            shutil.copytree(build_cache, workdir / ".next" / "cache", dirs_exist_ok=True, symlinks=True)
        secrets = _secret_values(env)
        net_dir = Path(scratch) / "net"
        net_dir.mkdir()
        egress = EgressProxy(net_dir / "egress.sock", egress_hosts)
        egress.start()
        forward = {EGRESS_PORT: "egress.sock"}
        forwarder: PgForwarder | None = None
        if postgres is not None:
            role, target = postgres
            forwarder = PgForwarder(net_dir / "pg.sock", role, role, target)
            forwarder.start()
            forward[target[1]] = "pg.sock"  # the server's port: the app's DATABASE_URL works inside
        try:
            steps, peak = _run_steps(
                install,
                script,
                kind=kind,
                workdir=workdir,
                tmp=tmp,
                cache=cache,
                full_env=full_env,
                timeout=timeout,
                started=started,
                memory_mb=memory_mb,
                max_processes=max_processes,
                log_path=log_path,
                scratch=Path(scratch),
                secrets=secrets,
                in_sync=in_sync,
                uid=uid,
                database_folders=database_folders or [],
                net_dir=net_dir,
                forward=forward if kind == "bwrap" else None,
                disk_quota_mb=disk_quota_mb,
                reuse=reuse,
            )
        finally:
            egress.stop()
            if forwarder is not None:
                forwarder.stop()
        if build_cache and script and real_folder(workdir, ".next/cache") is not None:
            keep_build_cache(workdir / ".next" / "cache", Path(build_cache))
    result = _result(workdir, kind, install, in_sync, steps, started, log_path, peak, reuse.label)
    result.dependencies = reuse.key
    return result


def _run_steps(
    install: list[str],
    script: str | None,
    *,
    kind: SandboxKind,
    workdir: Path,
    tmp: Path,
    cache: Path,
    full_env: dict[str, str],
    timeout: float,
    started: float,
    memory_mb: int,
    max_processes: int,
    log_path: Path,
    scratch: Path,
    secrets: list[str],
    in_sync: bool,
    uid: int | None,
    database_folders: list[Path],
    net_dir: Path,
    forward: dict[int, str] | None,
    disk_quota_mb: int | None,
    reuse: DepsReuse,
) -> tuple[list[dict[str, Any]], float | None]:
    steps: list[dict[str, Any]] = []
    peak: float | None = None
    for name, argv in (("install", install), *([("build", ["npm", "run", script])] if script else [])):
        if not argv:  # node_modules reused and the app has no install scripts of its own to run again
            steps.append({"name": name, "command": reuse.label, "seconds": reuse.seconds, "exit_code": 0})
            continue
        remaining = timeout - (time.monotonic() - started)
        raw_log = Path(scratch) / f"{name}.log"
        with raw_log.open("wb") as log:
            outcome = run_sandboxed(
                argv,
                kind=kind,
                workdir=workdir,
                tmp=tmp,
                npm_cache=cache,
                env=full_env,
                timeout=remaining,
                memory_mb=memory_mb,
                max_processes=max_processes,
                log=log,
                extra_binds=database_folders,
                uid=uid,
                net_dir=net_dir,
                forward=forward,
                disk_quota_mb=disk_quota_mb,
                owned=("node_modules",) if reuse.attached is not None else (),
            )
        output = _redacted(raw_log.read_text(encoding="utf-8", errors="replace"), secrets)
        note = ""
        if name == "install" and not in_sync:
            note = (
                "(package.json no longer matches package-lock.json after the transformation: npm install "
                "resolves the changed dependencies against the registry and writes a new lockfile)\n"
            )
        with log_path.open("a", encoding="utf-8") as kept:
            kept.write(f"\n$ {' '.join(argv)}    [sandbox: {kind}]\n{note}{output}")
        if outcome.peak_memory_mb is not None:
            peak = max(peak or 0.0, outcome.peak_memory_mb)
        steps.append(
            {
                "name": name,
                "command": " ".join(argv),
                "seconds": round(outcome.seconds, 2),
                "exit_code": outcome.returncode,
            }
        )
        if outcome.returncode == 0 and not outcome.timed_out:
            if name == "install":
                reuse.after_install(install, full_env)  # keeps what this install produced
            continue
        tail = _tail(log_path)
        if outcome.timed_out:
            reason = f"timed out after {timeout:.0f} s (the whole build's limit) and was killed"
        elif outcome.disk_exceeded:
            reason = f"wrote more than its disk quota ({disk_quota_mb} MB) and was killed"
        elif outcome.oom_killed:
            reason = f"ran out of memory (limit {memory_mb} MB) and was killed"
        else:
            reason = f"failed with exit code {outcome.returncode}"
        message = f"`{' '.join(argv)}` {reason}; log: {log_path}; last lines:\n{tail}"
        if name == "install" and not outcome.timed_out and _NETWORK_ERRORS.search(tail):
            raise TransientError(f"npm registry unreachable or failing: {message}")
        raise BuildFailed(message, log_path=str(log_path), log_tail=tail)
    return steps, peak


def _result(
    workdir: Path,
    kind: SandboxKind,
    install: list[str],
    in_sync: bool,
    steps: list[dict[str, Any]],
    started: float,
    log_path: Path,
    peak: float | None,
    reuse_label: str = "",
) -> BuildResult:
    server_dir, command, standalone = _publishable(workdir)
    public = workdir / "public"
    return BuildResult(
        workdir=workdir,
        sandbox=kind,
        install_command=reuse_label or ("already installed" if install[1] == "ls" else " ".join(install[:2])),
        lockfile_regenerated=not in_sync,
        install_seconds=steps[0]["seconds"],
        build_seconds=steps[1]["seconds"] if len(steps) > 1 else 0.0,
        seconds=round(time.monotonic() - started, 2),
        log_path=log_path,
        server_dir=server_dir,
        server_command=command,
        standalone=standalone,
        static_dir=workdir / ".next" / "static",
        public_dir=public if public.is_dir() else None,
        peak_memory_mb=peak,
        steps=steps,
    )
