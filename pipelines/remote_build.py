"""The web build on a worker (the ``build`` queue, a ``launchdeck worker`` process, maybe on another
machine): install and ``next build`` in the worker's own sandbox and folder, never the engine's.

- On the engine, when a worker starts the build, ``build_inputs`` (through ``pipelines.web``): the transformed working copy as
  blobs (the worker fetches those it lacks), the build variables, the app's sandbox uid and database
  (a snapshot of a local libSQL file; the forwarder target of a local PostgreSQL).
- On the worker, ``build_on_worker``: the build, then its output (the standalone server folder) sent
  back as blobs the engine lacks; ``remove_worker_copy`` is its undo, on the same worker.
- On the engine again, ``received_build`` (the host step): the output written out from the blobs.

It knows nothing of the pipeline: ``pipelines.web`` passes what its steps know.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import TerminalError
from engine.files import discard_in_background
from engine.temporal.blobs import (
    BlobStore,
    engine_blobs,
    manifest_bytes,
    put_file,
    read_manifest,
    tree_manifest,
    write_tree,
)

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.temporal.worker import WorkerContext

# What the working copy may hold that the worker makes itself (an interrupted engine-side build's).
NOT_SENT = ("node_modules", ".next")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


# -- on the engine ------------------------------------------------------------------------------------


def install_inputs(settings: Settings, copy: Path, uid: int | None) -> dict[str, Any]:
    """What a worker gets to install the dependencies of the working copy ``copy`` (no variables: the
    install runs beside the database step), in the app's sandbox ``uid``."""
    blobs = engine_blobs(settings.workspace)
    if not copy.is_dir():
        raise TerminalError("the transformed working copy is gone (the workspace was cleaned): deploy again")
    manifest = tree_manifest(copy, lambda path: put_file(blobs, path), lambda relative: relative in NOT_SENT)
    return {
        "working_copy": put_bytes(blobs, manifest_bytes(manifest)),
        "uid": uid,
        "timeout": settings.build_timeout_seconds,
        "memory_mb": settings.build_memory_mb,
    }


def build_inputs(
    settings: Settings, copy: Path, env: dict[str, str], isolation: dict[str, Any]
) -> dict[str, Any]:
    """What a worker gets to build the working copy ``copy`` with the deployment's ``env`` and the
    app's sandbox ``isolation`` (``pipelines.web.build_isolation``, from the engine's records)."""
    blobs = engine_blobs(settings.workspace)
    database = None
    inputs = install_inputs(settings, copy, isolation["uid"])
    for folder in isolation.get("database_folders", []):
        database = {"folder": str(folder), "files": snapshot(folder, blobs)}
    postgres = isolation.get("postgres")
    return {
        **inputs,
        "env": env,
        "database": database,
        "postgres": {"role": postgres[0], "host": postgres[1][0], "port": postgres[1][1]}
        if postgres
        else None,
    }


def put_bytes(blobs: BlobStore, data: bytes) -> str:
    with tempfile.NamedTemporaryFile(dir=blobs.root.parent, prefix=".manifest-") as handle:
        handle.write(data)
        handle.flush()
        return put_file(blobs, Path(handle.name))


def snapshot(folder: Path, blobs: BlobStore) -> dict[str, str]:
    """A consistent copy of each SQLite file of the app's database folder (SQLite's backup, so pages
    prerendered at build time read committed data): {file name: digest}. What the build writes to it
    stays on the worker."""
    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory(dir=blobs.root.parent, prefix=".snapshot-") as scratch:
        for path in sorted(folder.iterdir()):
            if path.is_symlink() or not path.is_file() or path.name.endswith(SQLITE_SIDE_FILES):
                continue
            copy = Path(scratch) / path.name
            with (
                contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as source,
                contextlib.closing(sqlite3.connect(copy)) as target,
            ):
                source.backup(target)
            files[path.name] = put_file(blobs, copy)
    return files


def received_build(built: dict[str, Any], blobs: BlobStore, root: Path) -> dict[str, Any]:
    """The build's output as the host step uses it, written out under ``root`` from the blobs the
    worker sent."""
    shutil.rmtree(root, ignore_errors=True)  # a retried host step
    manifest = read_manifest(blobs.open(built["output"]).read_bytes())
    executable = {digest for digest, is_executable in manifest["files"].values() if is_executable}

    def place(digest: str, target: Path) -> None:
        # A hard link (the output of a standalone server is thousands of files): the engine's blobs are
        # never written in place, and an app server sees its files read-only. Executables are copied,
        # so that setting the mode of one never changes a blob another tree links.
        if digest not in executable:
            with contextlib.suppress(OSError):  # else a copy (the file system's limit on links)
                os.link(blobs.open(digest), target)
                return
        shutil.copyfile(blobs.open(digest), target)

    write_tree(manifest, root, place)
    return {
        **built,
        "server_dir": str(root),
        "static_dir": str(root / built["static"]),
        "public_dir": str(root / built["public"]) if built["public"] else None,
    }


# -- on the worker ------------------------------------------------------------------------------------


def install_on_worker(ctx: WorkerContext) -> str:
    """The dependencies, kept in this worker's dependency cache for the app (an npm install), where the
    build step (``same_machine_as`` this one) attaches them. Runs beside the database step, without the
    app's variables; the build runs the app's own install scripts again with them."""
    from engine.jail import privileged
    from engine.webbuild import build as build_app
    from engine.webbuild.build import package_manager
    from engine.webbuild.deps_cache import cache_folders, release_mounts

    inputs, workdir = ctx.inputs, ctx.workdir / "app"
    remove_worker_copy(ctx)  # an earlier attempt's, on this machine
    ctx.fetch_tree(inputs["working_copy"], workdir)
    manager = package_manager(workdir)
    if manager != "npm":  # its node_modules are not cached: the build installs
        discard_in_background(ctx.workdir, ctx.worker_dir / "trash")
        return f"{manager}: installed by the build step (only npm installs are kept for it)"
    result = build_app(
        workdir,
        {},
        timeout=float(inputs["timeout"]),
        memory_mb=int(inputs["memory_mb"]),
        log_path=ctx.worker_dir / "logs" / f"{ctx.deployment_id}-build.log",
        script=None,
        uid=inputs["uid"] if privileged() else None,
        **cache_folders(ctx.worker_dir, ctx.app_name, ctx.app_id),
    )
    ctx.state["dependencies"] = result.dependencies
    release_mounts(workdir)
    discard_in_background(ctx.workdir, ctx.worker_dir / "trash")
    return (
        f"{result.install_command} {result.install_seconds:.1f} s in a {result.sandbox} sandbox "
        f"on worker {ctx.worker_name}"
    )


def build_on_worker(ctx: WorkerContext) -> str:
    from engine.edge.sandbox import give_to
    from engine.jail import privileged
    from engine.webbuild import build as build_app
    from engine.webbuild.deps_cache import cache_folders, release_mounts

    inputs, folder = ctx.inputs, ctx.worker_dir
    workdir = ctx.workdir / "app"
    remove_worker_copy(ctx)  # an earlier attempt's, on this machine
    started = time.perf_counter()
    fetched = ctx.fetch_tree(inputs["working_copy"], workdir)
    fetch_seconds = time.perf_counter() - started
    env = dict(inputs["env"])
    uid = inputs["uid"] if privileged() else None
    options: dict[str, Any] = {"uid": uid}
    if inputs["database"]:  # the snapshot, at a folder of this worker's, which the build URL names
        database = ctx.workdir / "database"
        database.mkdir(parents=True)
        for name, digest in inputs["database"]["files"].items():
            shutil.copyfile(ctx.api.cached(digest, ctx.cache), database / Path(name).name)
        if uid is not None:
            give_to(database, uid)
        if "DATABASE_URL" in env:
            env["DATABASE_URL"] = env["DATABASE_URL"].replace(inputs["database"]["folder"], str(database))
        options["database_folders"] = [database.resolve()]
    if inputs["postgres"]:
        postgres = inputs["postgres"]
        options["postgres"] = (postgres["role"], (postgres["host"], int(postgres["port"])))
    result = build_app(
        workdir,
        env,
        timeout=float(inputs["timeout"]),
        memory_mb=int(inputs["memory_mb"]),
        log_path=folder / "logs" / f"{ctx.deployment_id}-build.log",
        build_cache=folder / "build-cache" / ctx.app_name,  # Next's incremental cache
        dependencies=ctx.state.get("dependencies") or None,  # what the install step kept
        **cache_folders(folder, ctx.app_name, ctx.app_id),
        **options,
    )
    # A standalone server carries its static files and public/ (build.py copies them in); `next start`
    # runs from the whole working copy.
    server = result.server_dir
    started = time.perf_counter()
    output = ctx.send_tree(server, lambda relative: relative in (".next/cache", "node_modules/.cache"))
    ctx.state["build"] = {
        "output": output,
        "server_command": result.server_command,
        "static": ".next/static",
        "public": "public" if (server / "public").is_dir() else None,
        "install_seconds": result.install_seconds,
        "build_seconds": result.build_seconds,
    }
    send_seconds = time.perf_counter() - started
    # The plan: source code is not kept after deployment (deleted off the critical path).
    release_mounts(workdir)
    discard_in_background(ctx.workdir, ctx.worker_dir / "trash")
    return (
        f"{result.install_command} {result.install_seconds:.1f} s + build {result.build_seconds:.1f} s "
        f"in a {result.sandbox} sandbox on worker {ctx.worker_name}; working copy in {fetch_seconds:.1f} s "
        f"({fetched} file(s) fetched), output sent in {send_seconds:.1f} s"
    )


def remove_worker_copy(ctx: WorkerContext) -> None:
    from engine.webbuild.deps_cache import release_mounts

    release_mounts(ctx.workdir / "app")  # the node_modules overlay of an interrupted build
    shutil.rmtree(ctx.workdir, ignore_errors=True)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
