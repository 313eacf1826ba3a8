"""Staged deployments: a manifest (URL path -> blob) plus, for apps with a server part, a private copy of
the server bundle. A staged deployment never changes; promote only re-points the routing table."""

from __future__ import annotations

import json
import mimetypes
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import InputError, NotFound

MANIFEST = "manifest.json"
SERVER_DIR = "server"


@dataclass(frozen=True)
class ServerSpec:
    """How to run an app's server part, e.g. ``["node", "server.js"]`` in a Next standalone build.

    ``cwd`` is copied into the deployment at stage time, so the source folder may be deleted afterwards;
    the command runs in that copy with ``PORT`` and ``HOSTNAME`` set by the edge host. ``env`` holds the
    app's variables (secrets included): it is kept in memory only, never written to disk; after an
    engine restart the edge host asks its ``env_source`` for it again.
    """

    command: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    # True: hard-link the bundle's files instead of copying them (fast; same file system only, with a
    # copy as fallback). Only for a source that is deleted afterwards and never modified in place, like
    # the pipeline's build working copy, or the deployment would not stay immutable.
    link_files: bool = False


@dataclass(frozen=True)
class StaticFile:
    digest: str
    size: int
    content_type: str


@dataclass(frozen=True)
class Manifest:
    app: str
    deployment_id: str
    created_at: str
    files: dict[str, StaticFile]
    command: list[str] | None  # None: a static-only deployment
    env_names: list[str]
    directory: Path

    @property
    def has_server(self) -> bool:
        return self.command is not None

    @property
    def server_dir(self) -> Path:
        return self.directory / SERVER_DIR

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "deployment_id": self.deployment_id,
            "created_at": self.created_at,
            "files": {path: [f.digest, f.size, f.content_type] for path, f in self.files.items()},
            "server": None
            if self.command is None
            else {"command": self.command, "env_names": self.env_names},
        }

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        try:
            data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"no staged deployment at {directory}") from None
        server = data.get("server")
        return cls(
            app=data["app"],
            deployment_id=data["deployment_id"],
            created_at=data["created_at"],
            files={path: StaticFile(*entry) for path, entry in data["files"].items()},
            command=None if server is None else list(server["command"]),
            env_names=[] if server is None else list(server["env_names"]),
            directory=directory,
        )


def content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/javascript", "application/json"):
        return guessed + "; charset=utf-8"
    return guessed


StaticSource = Path | Mapping[str, Path]


def static_mounts(static: StaticSource | None) -> dict[str, Path]:
    """``Path`` -> served at ``/``; ``{"/_next/static": dir, "/": public}`` -> each folder at its prefix."""
    if static is None:
        return {}
    mounts = (
        {"/": Path(static)} if isinstance(static, str | Path) else {k: Path(v) for k, v in static.items()}
    )
    checked: dict[str, Path] = {}
    for prefix, folder in mounts.items():
        if not prefix.startswith("/"):
            raise InputError(
                f"static mount {prefix!r} must be a URL path starting with '/', like /_next/static"
            )
        if folder.is_symlink():  # its target would become the trusted root (review C4)
            raise InputError(f"static folder {folder} is a symbolic link; stage a real folder")
        if not folder.is_dir():
            raise InputError(f"static folder {folder} does not exist or is not a folder")
        checked["/" + prefix.strip("/")] = folder
    return checked


def _static_files(static_dir: Path, prefix: str) -> list[tuple[str, Path]]:
    """(URL path, file) for every regular file under ``static_dir``. Symbolic links are followed only
    when they stay inside the folder: generated code is untrusted and must not publish host files."""
    root = static_dir.resolve()
    base = prefix.rstrip("/")
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            file = Path(dirpath) / name
            real = file.resolve()
            if not real.is_relative_to(root) or not real.is_file():
                continue
            found.append((base + "/" + file.relative_to(root).as_posix(), real))
        dirnames[:] = [d for d in dirnames if (Path(dirpath) / d).resolve().is_relative_to(root)]
    return sorted(found)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, destination)


def write_staged(
    directory: Path,
    put_blob: Callable[[Path], tuple[str, int]],
    app: str,
    deployment_id: str,
    static: StaticSource | None,
    server: ServerSpec | None,
) -> Manifest:
    """Copy files and the server bundle into ``directory`` (which must not exist yet). Where mounts
    overlap, the longer prefix wins."""
    mounts = static_mounts(static)
    if server is not None:
        if not server.command:
            raise InputError("the server command is empty: give the program and its arguments")
        if not server.cwd.is_dir():
            raise InputError(f"server folder {server.cwd} does not exist or is not a folder")
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        files: dict[str, StaticFile] = {}
        for prefix in sorted(mounts, key=len):
            for url_path, file in _static_files(mounts[prefix], prefix):
                digest, size = put_blob(file)
                files[url_path] = StaticFile(digest, size, content_type(url_path))
        if server is not None:
            copy = _link_or_copy if server.link_files else shutil.copy2
            shutil.copytree(server.cwd, partial / SERVER_DIR, symlinks=True, copy_function=copy)
        manifest = Manifest(
            app=app,
            deployment_id=deployment_id,
            created_at=datetime.now(UTC).isoformat(),
            files=files,
            command=None if server is None else list(server.command),
            env_names=[] if server is None else sorted(server.env),
            directory=directory,
        )
        (partial / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=1), encoding="utf-8")
        os.replace(partial, directory)  # the deployment appears whole or not at all
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest
