"""Dependencies reused between builds.

Two caches, with different trust:

* ``DepsCache``: one app's installed ``node_modules``, kept per app under a key (sha256 of the lockfile,
  the package.json dependency fields, .npmrc, the Node and npm versions, the platform, the install
  command and environment, the sandbox kind). An entry is written only from an install that exited 0 in
  the sandbox, by moving its ``node_modules`` into the cache (root-only folders, never visible to a
  build). A later build sees it through an overlay mount (the entry is the read-only lower layer, the
  build's writes land in a scratch upper layer), or, where the engine cannot mount, through a full copy:
  either way no build can change a cached file. Entries are never shared between apps.
* ``PackageStore``: machine-wide package tarballs in npm's own content-addressed layout
  (``content-v2/sha512/ab/cd/...``, as cacache names them). The engine copies a tarball in only after
  hashing it and finding the hash equal to its name, and copies tarballs out into a build's private npm
  cache only when the app's lockfile asks for that integrity. npm reads them by digest and verifies the
  digest while reading (pacote's cache short-cut needs the lockfile's ``integrity`` and ``resolved``;
  cacache raises EINTEGRITY on a mismatch), so no tenant can put a package under another package's
  integrity. Only sha512 content is shared; index entries (URL -> content, packuments) never are.

    cache = DepsCache(workspace / "deps-cache" / app)
    key = cache.key(workdir, ["npm", "ci"], env, "bwrap")
    entry = cache.find(key)          # a Path, or None
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.jail import NODE, SYSTEM_PATH

FORMAT = 1
KEEP_ENTRIES = 2  # per app: the current lockfile and the one before (a rollback-and-redeploy stays warm)
# A lockfile change installs on top of the app's newest entry (an overlay: npm changes only what differs)
# and keeps what changed as a layer over it; a chain this long is flattened by a clean install instead.
MAX_LAYERS = 4
# Key parts a base entry must share with the new install: npm reconciles packages with the lockfile, but
# would not rebuild an unchanged package for another Node, or fetch it again from another registry.
_BASE_PARTS = ("format", "node", "npmrc", "env", "sandbox")
# The root package's scripts that `npm ci` runs after installing; on a reuse they run again, since they
# may read the app's own files (e.g. `prisma generate` in postinstall), which the key does not cover.
ROOT_INSTALL_SCRIPTS = (
    "preinstall",
    "install",
    "postinstall",
    "prepublish",
    "preprepare",
    "prepare",
    "postprepare",
)
# package.json fields that decide what an install puts in node_modules.
_PACKAGE_FIELDS = (
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bundleDependencies",
    "bundledDependencies",
    "overrides",
    "workspaces",
)
# Sandbox variables whose values are paths of this one build (they differ between builds and say
# nothing about what is installed).
_PATH_VARIABLES = {"HOME", "TMPDIR", "LAUNCHDECK_WORKDIR", "npm_config_cache", "COREPACK_HOME"}
_UNSAFE_MOUNT_CHARS = set(",:\\\n")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str:
    return _sha256(path.read_bytes()) if path.is_file() else "absent"


def cache_folders(root: Path, app_name: str, app_id: str) -> dict[str, Any]:
    """A machine's dependency caches for one app (``build``'s keyword arguments): its npm cache, its
    node_modules entries (by app id: a name freed by a destroyed app can be taken again) and the
    machine-wide store of verified package tarballs: ``LAUNCHDECK_PACKAGE_STORE`` where the engine and
    the workers of one machine share it, else in ``root``."""
    return {
        "npm_cache": root / "npm-cache" / app_name,
        "deps_cache": root / "deps-cache" / app_id,
        "package_store": Path(os.environ.get("LAUNCHDECK_PACKAGE_STORE") or root / "package-store"),
    }


def node_identity() -> dict[str, str]:
    """The Node runtime a build runs (the sandbox binds this machine's /usr): version, ABI, platform."""
    script = (
        "console.log(JSON.stringify({version: process.version, modules: process.versions.modules, "
        "platform: process.platform, arch: process.arch, napi: process.versions.napi || ''}))"
    )
    env = {"PATH": SYSTEM_PATH}  # what the sandbox binds: this machine's /usr
    out = subprocess.run(
        [NODE, "-e", script], capture_output=True, text=True, env=env, timeout=30, check=True
    )
    identity: dict[str, str] = json.loads(out.stdout)
    npm = shutil.which("npm", path=env["PATH"])
    package = Path(npm).resolve().parent.parent / "package.json" if npm else None
    if package is not None and package.is_file():
        identity["npm"] = str(json.loads(package.read_text(encoding="utf-8")).get("version", ""))
    else:
        identity["npm"] = subprocess.run(
            ["npm", "--version"], capture_output=True, text=True, env=env, timeout=30
        ).stdout.strip()
    identity["libc"] = "-".join(platform.libc_ver())
    identity["machine"] = platform.machine()
    return identity


def key_parts(workdir: Path, install: list[str], env: dict[str, str], sandbox: str) -> dict[str, Any]:
    """What an install's result depends on, each part named (kept beside the entry, for a person)."""
    try:
        package = json.loads((workdir / "package.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        package = {}
    dependency_fields = {name: package.get(name) for name in _PACKAGE_FIELDS if name in package}
    install_env = sorted(f"{k}={v}" for k, v in env.items() if k not in _PATH_VARIABLES)
    return {
        "format": FORMAT,
        "lockfile": _file_digest(workdir / "package-lock.json"),
        "package": _sha256(json.dumps(dependency_fields, sort_keys=True).encode()),
        "npmrc": _file_digest(workdir / ".npmrc"),
        "node": node_identity(),
        "command": list(install),
        # the whole install environment (the app's variables included: an install script may read them),
        # hashed: the key is a file name and must not show a variable's value
        "env": _sha256("\0".join(install_env).encode()),
        "sandbox": sandbox,
    }


def digest(parts: dict[str, Any]) -> str:
    return _sha256(json.dumps(parts, sort_keys=True).encode())


@dataclass
class Attached:
    """node_modules of a working copy, backed by a cache entry; ``detach`` before the copy is removed."""

    target: Path
    mode: str  # "overlay" or "copy"
    upper: Path | None = None

    def detach(self, *, keep: bool) -> None:
        """Unmount the overlay. ``keep``: the working copy still needs node_modules (a `next start`
        server runs from it), so its merged contents are copied into a plain folder first."""
        if self.mode != "overlay":
            return
        if keep:
            materialized = self.target.with_name(".node_modules-materialized")
            _copy_tree(self.target, materialized)
        _unmount(self.target)
        if keep:
            self.target.rmdir()
            materialized.replace(self.target)
        if self.upper is not None:
            shutil.rmtree(self.upper.parent, ignore_errors=True)

    def unmount(self) -> Path | None:
        """Unmount and hand over the upper layer (what the build changed), empty mount point left."""
        if self.mode != "overlay":
            return None
        _unmount(self.target)
        return self.upper


def _copy_regular(source: str, destination: str) -> None:
    """copytree's copy function for trees a build wrote: regular files only (a fifo or a device file a
    build planted is skipped, never opened by the engine)."""
    if stat.S_ISREG(os.lstat(source).st_mode):
        shutil.copy2(source, destination)


def _copy_tree(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, symlinks=True, copy_function=_copy_regular)


def _inside(path: Path, root: Path) -> bool:
    """True when ``path``, links resolved, is within ``root`` (a build can plant links in its own cache)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def _own_like(root: Path, path: Path) -> None:
    """Gives ``path`` and the folders between it and ``root`` the owner of ``root`` (the build runs as
    the app's own uid and must be able to add its own files beside what the engine put there)."""
    owner = root.stat()
    current = path
    while current != root and current.is_relative_to(root):
        if os.lstat(current).st_uid != owner.st_uid:
            os.lchown(current, owner.st_uid, owner.st_gid)
        current = current.parent


def _make_dirs_within(path: Path, root: Path) -> bool:
    """mkdir -p of ``path`` under ``root``, refusing (False) where a component is a link or not a folder."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            current.mkdir()
            continue
        if not stat.S_ISDIR(mode):
            return False
    return True


def _unmount(target: Path) -> None:
    result = subprocess.run(["umount", str(target)], capture_output=True, timeout=60)
    if result.returncode != 0:  # something still holds a file open: detach it now, it goes when released
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=60)


def release_mounts(folder: Path) -> None:
    """Unmount whatever is mounted at or under ``folder`` (an overlay a crashed build left behind)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    root = str(folder.resolve())
    points = [line.split()[4] for line in lines if len(line.split()) > 4]
    for point in sorted((p for p in points if p == root or p.startswith(root + "/")), reverse=True):
        _unmount(Path(point))


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


class DepsCache:
    """One app's node_modules entries: ``root/<digest>/{node_modules, key.json[, package-lock.json]}``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def key(self, workdir: Path, install: list[str], env: dict[str, str], sandbox: str) -> str:
        return digest(key_parts(workdir, install, env, sandbox))

    def layers(self, entry: Path) -> list[Path] | None:
        """The entry's node_modules as overlay lower layers, top first; None when a base is missing."""
        found: list[Path] = []
        while len(found) <= MAX_LAYERS:
            if (entry / "node_modules").is_dir():
                return [*found, entry / "node_modules"]
            base = entry / "base"
            if not ((entry / "layer").is_dir() and base.is_file()):
                return None
            found.append(entry / "layer")
            name = base.read_text(encoding="utf-8").strip()
            if not name or "/" in name or name.startswith("."):
                return None
            entry = self.root / name
        return None

    def find(self, key: str) -> Path | None:
        entry = self.root / key
        marker = entry / "key.json"
        if not (marker.is_file() and self.layers(entry) is not None):
            return None
        with contextlib.suppress(OSError):
            os.utime(marker)  # recently used: kept by the eviction
        return entry

    def base_for(self, parts: dict[str, Any]) -> Path | None:
        """The newest entry an install with ``parts`` may start from (same Node, registry settings,
        environment and sandbox; a chain short enough to grow by one layer)."""
        entries = [p for p in self.root.iterdir() if (p / "key.json").is_file()] if self.root.is_dir() else []
        entries.sort(key=lambda p: (p / "key.json").stat().st_mtime, reverse=True)
        for entry in entries:
            try:
                stored = json.loads((entry / "key.json").read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            chain = self.layers(entry)
            if (
                chain is not None
                and len(chain) < MAX_LAYERS
                and all(stored.get(k) == parts.get(k) for k in _BASE_PARTS)
            ):
                return entry
        return None

    def save_layer(self, key: str, base: Path, upper: Path, parts: dict[str, Any]) -> Path | None:
        """Keeps ``upper`` (what an install on top of ``base`` changed, unmounted) as entry ``key``."""
        staging = self.root / f".staging-{secrets.token_hex(6)}"
        staging.mkdir(mode=0o700)
        try:
            upper.replace(staging / "layer")
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            return None
        shutil.rmtree(upper.parent, ignore_errors=True)  # the overlay's work folder
        (staging / "base").write_text(base.name, encoding="utf-8")
        return self._publish(staging, key, parts)

    def save(self, key: str, workdir: Path, parts: dict[str, Any], *, lockfile: bool) -> Path | None:
        """Moves ``workdir/node_modules`` (just installed, exit 0) into the cache as entry ``key``.
        ``lockfile``: keep the lockfile the install wrote (an `npm install` resolved it) to restore it
        with the entry. Returns the entry, or None when it could not be moved (another file system)."""
        source = workdir / "node_modules"
        if not source.is_dir() or source.is_symlink():
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # no build, in either sandbox, can reach an entry except through a mount
        staging = self.root / f".staging-{secrets.token_hex(6)}"
        staging.mkdir(mode=0o700)
        try:
            source.replace(staging / "node_modules")
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            return None
        if lockfile and (workdir / "package-lock.json").is_file():
            shutil.copy2(workdir / "package-lock.json", staging / "package-lock.json")
        return self._publish(staging, key, parts)

    def _publish(self, staging: Path, key: str, parts: dict[str, Any]) -> Path | None:
        (staging / "key.json").write_text(json.dumps(parts, indent=2, sort_keys=True), encoding="utf-8")
        entry = self.root / key
        try:
            staging.replace(entry)
        except OSError:  # an entry with this key appeared meanwhile: keep that one
            self._discard(staging)
            if self.find(key) is None:
                return None
        self.evict(keep=KEEP_ENTRIES)
        return entry

    def attach(
        self,
        entry: Path,
        workdir: Path,
        scratch: Path,
        *,
        overlay: bool = True,
        lockfile: bool = True,
        layers: Path | None = None,
    ) -> Attached | None:
        """Gives ``workdir`` a node_modules backed by ``entry`` that a build may write without changing
        the entry: an overlay mount (constant time), else a copy. None: a layered entry and no overlay."""
        lowers = self.layers(entry)
        if lowers is None:
            return None
        target = workdir / "node_modules"
        if target.exists() or target.is_symlink():
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
        if lockfile and (entry / "package-lock.json").is_file():
            shutil.copy2(entry / "package-lock.json", workdir / "package-lock.json")
        layers = layers or scratch / f"node-modules-{secrets.token_hex(4)}"
        upper, work = layers / "upper", layers / "work"
        paths = [*map(str, lowers), str(upper), str(work), str(target)]
        if overlay and _can_mount() and not any(set(p) & _UNSAFE_MOUNT_CHARS for p in paths):
            upper.mkdir(parents=True)
            work.mkdir()
            target.mkdir()
            options = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}"
            mounted = subprocess.run(
                ["mount", "-t", "overlay", "overlay", "-o", f"{options},nosuid,nodev", str(target)],
                capture_output=True,
                timeout=60,
            )
            if mounted.returncode == 0:
                return Attached(target, "overlay", upper)
            target.rmdir()
            shutil.rmtree(layers, ignore_errors=True)
        if len(lowers) > 1:
            return None
        _copy_tree(lowers[0], target)
        return Attached(target, "copy")

    def evict(self, keep: int) -> None:
        """Keeps the ``keep`` most recently used entries and the bases they are layered on."""
        entries = [p for p in self.root.iterdir() if p.is_dir() and (p / "key.json").is_file()]
        entries.sort(key=lambda p: (p / "key.json").stat().st_mtime, reverse=True)
        needed = set()
        for entry in entries[:keep]:
            needed.add(entry.name)
            for layer in self.layers(entry) or []:
                needed.add(layer.parent.name)
        for stale in entries:
            if stale.name not in needed:
                self._discard(stale)
        for leftover in self.root.glob(".staging-*"):  # from a crash; younger ones may be a save under way
            with contextlib.suppress(OSError):
                if time.time() - leftover.stat().st_mtime > 3600:
                    self._discard(leftover)

    def _discard(self, folder: Path) -> None:
        trash = self.root / f".trash-{secrets.token_hex(6)}"
        try:
            folder.replace(trash)
        except OSError:
            return
        threading.Thread(target=shutil.rmtree, args=(trash, True), name="deps-evict", daemon=True).start()


def root_install_scripts(workdir: Path) -> list[str]:
    try:
        scripts = json.loads((workdir / "package.json").read_text(encoding="utf-8")).get("scripts") or {}
    except (OSError, json.JSONDecodeError):
        return []
    return [name for name in ROOT_INSTALL_SCRIPTS if isinstance(scripts, dict) and scripts.get(name)]


class DepsReuse:
    """What build() does around its install step (a context manager: ``__exit__`` detaches the mount).

    ``before_install`` returns the command to run instead of the install: unchanged when nothing
    matches, the root package's install scripts (or nothing at all) when a cache entry was attached.
    ``after_install`` (only after an install that exited 0) adds the downloaded tarballs to the store and
    moves the new node_modules into the cache, then attaches it back for the build.

    ``install_only`` (a deployment's install step, which runs beside its database step): nothing is
    attached; an entry that matches is only found, a new install only kept; ``key`` names the entry for
    the build step, which passes it back as ``dependencies`` to attach that entry.
    """

    def __init__(
        self,
        deps_cache: Path | str | None,
        package_store: Path | str | None,
        workdir: Path,
        scratch: Path,
        npm_cache: Path,
        sandbox: str,
        log_path: Path | None = None,
        *,
        install_only: bool = False,
        dependencies: str | None = None,
    ) -> None:
        self.cache = DepsCache(deps_cache) if deps_cache else None
        self.install_only, self.dependencies = install_only, dependencies
        self.key = ""  # the entry that holds this build's node_modules, once known
        self.store = PackageStore(package_store) if package_store else None
        self.workdir, self.scratch, self.npm_cache, self.sandbox = workdir, scratch, npm_cache, sandbox
        self.log_path = log_path
        self.parts: dict[str, Any] | None = None
        self.attached: Attached | None = None
        self.label = ""  # "reused node_modules (overlay)" when an entry was used
        self.reused = False
        self.base: Path | None = None  # the entry an install on top of started from
        self.seconds = 0.0
        self.seeded = Transfer()
        self.harvested = Transfer()

    def __enter__(self) -> DepsReuse:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if self.attached is not None:
            # A `next start` server (no standalone output) runs from the working copy's node_modules;
            # a standalone server and a Worker bundle (.open-next) carry their own.
            standalone = (self.workdir / ".next" / "standalone" / "server.js").is_file()
            worker = (self.workdir / ".open-next").is_dir()
            keep = exc_type is None and not standalone and not worker and not self.install_only
            self.attached.detach(keep=keep)
            self.attached = None

    def _start_harvest(self, store: PackageStore) -> None:
        """Adds the tarballs this install downloaded to the store, off the build's critical path."""
        started = time.monotonic()

        def done(harvested: Transfer) -> None:
            self.harvested = harvested
            with contextlib.suppress(OSError):  # the build's log is gone (its folder was removed)
                self.note(
                    f"{harvested.files} new tarball(s) ({harvested.bytes / 1e6:.1f} MB) verified and added "
                    f"to the package store in {time.monotonic() - started:.2f} s"
                )

        store.harvest_in_background(self.npm_cache, done)

    def note(self, text: str) -> None:
        """A line in the build's log, so that an operator sees what was reused."""
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(f"\n[dependencies] {text}\n")

    def before_install(self, install: list[str], env: dict[str, str]) -> list[str]:
        if install[0] != "npm" or install[:2] == ["npm", "ls"]:  # another manager (corepack), or a
            self.cache = self.store = None  # rebuild of the same working copy: nothing reused or kept
            return install
        started = time.monotonic()
        if install[:2] == ["npm", "ci"]:  # before the key: the completed lockfile is what gets installed
            filled = fill_resolved(self.workdir)
            if filled:
                self.note(f"{filled} lockfile entries without `resolved` given their registry tarball URL")
        overlay = self.sandbox == "bwrap"  # the unprivileged-user sandbox chowns the copy: a copy then
        if self.cache is not None:
            self.parts = key_parts(self.workdir, install, env, self.sandbox)
            entry = (self.cache.find(self.dependencies) if self.dependencies else None) or self.cache.find(
                digest(self.parts)
            )
            if entry is not None and self.install_only:  # the build attaches it
                self.reused, self.key, self.label = True, entry.name, "reused node_modules"
                self.note(
                    f"node_modules of entry {entry.name[:12]} (same lockfile, Node, options): no install"
                )
                return []
            attached = (
                self.cache.attach(entry, self.workdir, self.scratch, overlay=overlay) if entry else None
            )
            if entry is not None and attached is not None:
                self.attached, self.reused, self.key = attached, True, entry.name
                self.label = f"reused node_modules ({attached.mode})"
                self.seconds = round(time.monotonic() - started, 2)
                self.note(
                    f"node_modules of entry {entry.name[:12]} (same lockfile, Node, options) attached by "
                    f"{attached.mode} in {self.seconds:.2f} s; no install"
                )
                scripts = root_install_scripts(self.workdir)
                return (
                    ["/bin/sh", "-c", " && ".join(f"npm run {name}" for name in scripts)] if scripts else []
                )
            base = self.cache.base_for(self.parts) if overlay else None
            # its layers live beside the entries (one file system: the new layer is moved, not copied)
            layers = self.cache.root / f".staging-{secrets.token_hex(6)}"
            attached = (
                self.cache.attach(base, self.workdir, self.scratch, lockfile=False, layers=layers)
                if base is not None
                else None
            )
            if base is not None and attached is not None and attached.mode == "overlay":
                # npm reconciles the app's previous node_modules (read-only below, changes on top)
                # with the new lockfile: only what differs is fetched, extracted and built
                self.attached, self.base = attached, base
                install = ["npm", "install", "--no-audit", "--no-fund"]
                self.label = "npm install over the last node_modules"
                self.note(f"lockfile changed: installing over entry {base.name[:12]} (overlay)")
            elif attached is not None:
                attached.detach(keep=False)
                shutil.rmtree(self.workdir / "node_modules", ignore_errors=True)
        if self.store is not None:
            self.seeded = self.store.seed(self.workdir, self.npm_cache)
            self.note(
                f"{self.seeded.files} tarball(s) ({self.seeded.bytes / 1e6:.1f} MB) copied from the package "
                f"store into npm's cache in {time.monotonic() - started:.2f} s"
            )
        return install

    def after_install(self, install: list[str], env: dict[str, str]) -> None:
        if self.reused or install[:2] == ["npm", "ls"]:
            return
        if self.store is not None:
            self._start_harvest(self.store)
        if self.cache is None or self.parts is None:
            return
        started = time.monotonic()
        key = digest(self.parts)
        resolved = self.parts["command"][1] == "install"  # npm install wrote the lockfile: keep it
        if self.base is not None and self.attached is not None:
            upper = self.attached.unmount()
            self.attached = None
            entry = self.cache.save_layer(key, self.base, upper, self.parts) if upper else None
            if entry is not None and resolved:
                shutil.copy2(self.workdir / "package-lock.json", entry / "package-lock.json")
            if entry is None:  # could not keep it: the build still needs what was installed
                raise OSError("the installed dependencies could not be kept for the build")
        else:
            entry = self.cache.save(key, self.workdir, self.parts, lockfile=resolved)
        if entry is None:
            return
        self.key = entry.name
        layered = f" (a layer over {self.base.name[:12]})" if self.base is not None else ""
        if self.install_only:
            self.note(f"node_modules kept as entry {entry.name[:12]}{layered} for the build")
            return
        self.attached = self.cache.attach(
            entry, self.workdir, self.scratch, overlay=self.sandbox == "bwrap", lockfile=False
        )
        if self.attached is None:
            raise OSError(f"dependencies entry {entry.name[:12]} could not be attached")
        self.note(
            f"node_modules kept as entry {entry.name[:12]}{layered}, attached by {self.attached.mode} in "
            f"{time.monotonic() - started:.2f} s"
        )


# -- the machine-wide package store ---------------------------------------------------------------------


def _sha512_hex(integrity: str) -> str | None:
    """The hex digest of the sha512 part of an SRI string ("sha512-<base64> sha1-..."), if any."""
    for token in integrity.split():
        algorithm, _, encoded = token.partition("-")
        if algorithm == "sha512":
            try:
                raw = base64.b64decode(encoded.split("?")[0], validate=True)
            except (binascii.Error, ValueError):
                return None
            return raw.hex() if len(raw) == 64 else None
    return None


def _content_path(root: Path, hex_digest: str) -> Path:
    return root / "sha512" / hex_digest[:2] / hex_digest[2:4] / hex_digest[4:]


def _npm_content(npm_cache: Path) -> Path:
    return npm_cache / "_cacache" / "content-v2"


_DEFAULT_REGISTRY = "https://registry.npmjs.org/"
_REGISTRY_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$")
_PACKAGE_NAME = re.compile(r"^(?:@[a-z0-9][\w.-]*/)?[a-z0-9][\w.-]*$", re.IGNORECASE)


def fill_resolved(workdir: Path) -> int:
    """Adds the registry tarball URL to lockfile entries that have a version and an integrity but no
    ``resolved`` (some tools omit it). npm reads a tarball from its cache by digest only when it knows
    both; without ``resolved`` it asks the registry for the package document first, every install. The
    working copy's lockfile only (the app's source is not touched); skipped when the app names its own
    registry in .npmrc. Returns how many entries were completed."""
    if (workdir / ".npmrc").exists():
        return 0
    path = workdir / "package-lock.json"
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return 0
    packages = lock.get("packages") if isinstance(lock, dict) else None
    if not isinstance(packages, dict):
        return 0
    filled = 0
    for location, entry in packages.items():
        if not location or not isinstance(entry, dict) or entry.get("resolved") or entry.get("link"):
            continue
        version, integrity = entry.get("version"), entry.get("integrity")
        name = entry.get("name") or location.rsplit("node_modules/", 1)[-1]
        if not (isinstance(version, str) and _REGISTRY_VERSION.match(version) and isinstance(integrity, str)):
            continue
        if not (isinstance(name, str) and _PACKAGE_NAME.match(name)):
            continue
        entry["resolved"] = f"{_DEFAULT_REGISTRY}{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
        filled += 1
    if filled:
        path.write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    return filled


def lockfile_integrities(workdir: Path) -> list[str]:
    """sha512 hex digests of the tarballs the lockfile pins."""
    try:
        lock = json.loads((workdir / "package-lock.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    found = []
    for entry in (lock.get("packages") or {}).values():
        integrity = entry.get("integrity") if isinstance(entry, dict) else None
        if isinstance(integrity, str) and (hex_digest := _sha512_hex(integrity)):
            found.append(hex_digest)
    return found


@dataclass
class Transfer:
    files: int = 0
    bytes: int = 0


# Harvests under way in this process, by store; a folder of tarballs being harvested is named so (beside
# the npm caches), and one a stopped process left is deleted with the app's next harvest.
_HARVESTS: dict[Path, list[threading.Thread]] = {}
_HARVESTS_LOCK = threading.Lock()
_HARVESTING = ".harvest-"


class PackageStore:
    """Package tarballs by sha512, shared by every app on the machine; written only by the engine."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def seed(self, workdir: Path, npm_cache: Path) -> Transfer:
        """Copies into a build's npm cache the tarballs its lockfile pins that the store holds (copies, not
        links: the build may write its own cache, never the store), once the harvests under way ended."""
        self.wait()
        done = Transfer()
        npm_cache.mkdir(parents=True, exist_ok=True)  # the engine's own path for this build
        content = _npm_content(npm_cache)
        for hex_digest in lockfile_integrities(workdir):
            source, target = _content_path(self.root, hex_digest), _content_path(content, hex_digest)
            if target.exists() or not source.is_file():
                continue
            if not _make_dirs_within(target.parent, npm_cache):  # a link the app's last build left there
                continue
            partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
            shutil.copyfile(source, partial)
            partial.chmod(0o644)
            partial.replace(target)
            _own_like(npm_cache, target)
            done.files += 1
            done.bytes += target.stat().st_size
        return done

    def harvest_in_background(self, npm_cache: Path, done: Callable[[Transfer], object]) -> None:
        """``harvest`` off the critical path: the npm cache's tarballs are first moved out of it, where no
        later sandboxed command can reach them (the install that wrote them is over: its pid namespace
        ended with it), then added to the store by a thread, which calls ``done``. ``seed`` waits for it.
        Where they cannot be moved (another file system), they are harvested here and now."""
        content = _npm_content(npm_cache)
        taken = npm_cache.parent / f"{_HARVESTING}{secrets.token_hex(6)}"
        try:
            if not content.is_dir() or not _inside(content, npm_cache):  # a link planted on the way
                raise OSError("nothing to move")
            (taken / "_cacache").mkdir(parents=True, mode=0o700)
            content.replace(taken / "_cacache" / "content-v2")
        except OSError:
            shutil.rmtree(taken, ignore_errors=True)
            done(self.harvest(npm_cache))
            return

        def run() -> None:
            for leftover in npm_cache.parent.glob(f"{_HARVESTING}*"):  # a stopped process's
                with contextlib.suppress(OSError):
                    if time.time() - leftover.stat().st_mtime > 3600:
                        shutil.rmtree(leftover, ignore_errors=True)
            try:
                done(self.harvest(taken))
            finally:
                shutil.rmtree(taken, ignore_errors=True)

        thread = threading.Thread(target=run, name="harvest", daemon=True)
        with _HARVESTS_LOCK:
            _HARVESTS.setdefault(self.root.resolve(), []).append(thread)
        thread.start()

    def wait(self) -> None:
        """Until the harvests into this store that this process started have ended."""
        with _HARVESTS_LOCK:
            threads = list(_HARVESTS.get(self.root.resolve(), []))
        for thread in threads:
            thread.join()
        with _HARVESTS_LOCK:
            running = [t for t in _HARVESTS.get(self.root.resolve(), []) if t.is_alive()]
            _HARVESTS[self.root.resolve()] = running

    def harvest(self, npm_cache: Path, max_bytes: int = 1 << 30) -> Transfer:
        """Adds to the store the sha512 tarballs of a build's npm cache that it lacks, each hashed here
        and kept only when its content matches its name. Links and odd files are skipped."""
        done = Transfer()
        base = _npm_content(npm_cache) / "sha512"
        if not base.is_dir() or not _inside(base, npm_cache):
            return done
        for directory, dirnames, filenames in os.walk(base):  # os.walk does not follow links
            dirnames[:] = [d for d in dirnames if not (Path(directory) / d).is_symlink()]
            for name in filenames:
                path = Path(directory) / name
                relative = path.relative_to(base).parts
                hex_digest = "".join(relative)
                if len(relative) != 3 or len(hex_digest) != 128 or name.startswith("."):
                    continue
                target = _content_path(self.root, hex_digest)
                if target.exists():
                    continue
                copied = self._verified_copy(path, hex_digest, target, max_bytes)
                if copied:
                    done.files += 1
                    done.bytes += copied
        return done

    def _verified_copy(self, path: Path, hex_digest: str, target: Path, max_bytes: int) -> int:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return 0
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        hasher, size = hashlib.sha512(), 0
        try:
            with os.fdopen(fd, "rb") as source:
                if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):  # a fifo or device planted there
                    return 0
                with partial.open("wb") as out:
                    while chunk := source.read(1 << 20):
                        size += len(chunk)
                        if size > max_bytes:
                            raise ValueError("too large")
                        hasher.update(chunk)
                        out.write(chunk)
            if hasher.hexdigest() != hex_digest:
                raise ValueError("content does not match its name")
            partial.chmod(0o644)
            partial.replace(target)
            return size
        except (OSError, ValueError):
            partial.unlink(missing_ok=True)
            return 0
