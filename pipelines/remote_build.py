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
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import TerminalError
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


def build_inputs(
    settings: Settings, copy: Path, env: dict[str, str], isolation: dict[str, Any]
) -> dict[str, Any]:
    """What a worker gets to build the working copy ``copy`` with the deployment's ``env`` and the
    app's sandbox ``isolation`` (``pipelines.web.build_isolation``, from the engine's records)."""
    blobs = engine_blobs(settings.workspace)
    if not copy.is_dir():
        raise TerminalError("the transformed working copy is gone (the workspace was cleaned): deploy again")
    manifest = tree_manifest(copy, lambda path: put_file(blobs, path), lambda relative: relative in NOT_SENT)
    database = None
    for folder in isolation.get("database_folders", []):
        database = {"folder": str(folder), "files": snapshot(folder, blobs)}
    postgres = isolation.get("postgres")
    return {
        "working_copy": put_bytes(blobs, manifest_bytes(manifest)),
        "env": env,
        "uid": isolation["uid"],
        "database": database,
        "postgres": {"role": postgres[0], "host": postgres[1][0], "port": postgres[1][1]}
        if postgres
        else None,
        "timeout": settings.build_timeout_seconds,
        "memory_mb": settings.build_memory_mb,
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
    write_tree(manifest, root, lambda digest, target: shutil.copyfile(blobs.open(digest), target))
    return {
        **built,
        "server_dir": str(root),
        "static_dir": str(root / built["static"]),
        "public_dir": str(root / built["public"]) if built["public"] else None,
    }


# -- on the worker ------------------------------------------------------------------------------------


def build_on_worker(ctx: WorkerContext) -> str:
    from engine.edge.sandbox import give_to
    from engine.jail import privileged
    from engine.webbuild import build as build_app
    from engine.webbuild.deps_cache import cache_folders

    inputs, folder = ctx.inputs, ctx.worker_dir
    workdir = ctx.workdir / "app"
    remove_worker_copy(ctx)  # an earlier attempt's, on this machine
    fetched = ctx.fetch_tree(inputs["working_copy"], workdir)
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
        **cache_folders(folder, ctx.app_name, ctx.app_id),
        **options,
    )
    # A standalone server carries its static files and public/ (build.py copies them in); `next start`
    # runs from the whole working copy.
    server = result.server_dir
    output = ctx.send_tree(server, lambda relative: relative in (".next/cache", "node_modules/.cache"))
    ctx.state["build"] = {
        "output": output,
        "server_command": result.server_command,
        "static": ".next/static",
        "public": "public" if (server / "public").is_dir() else None,
        "install_seconds": result.install_seconds,
        "build_seconds": result.build_seconds,
    }
    remove_worker_copy(ctx)  # the plan: source code is not kept after deployment
    return (
        f"{result.install_command} {result.install_seconds:.1f} s + build {result.build_seconds:.1f} s "
        f"in a {result.sandbox} sandbox on worker {ctx.worker_name} "
        f"({fetched} file(s) of the working copy fetched)"
    )


def remove_worker_copy(ctx: WorkerContext) -> None:
    from engine.webbuild.deps_cache import release_mounts

    release_mounts(ctx.workdir / "app")  # the node_modules overlay of an interrupted build
    shutil.rmtree(ctx.workdir, ignore_errors=True)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
