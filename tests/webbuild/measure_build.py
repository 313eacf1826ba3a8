"""Prints build figures for an example app (not a test; run by hand):

    .venv/bin/python -m tests.webbuild.measure_build shop local-libsql [--rebuild] [--baseline]

Figures: preflight, transform, preview import, sandboxed install and build, peak memory, size of what is
served, server ready time and /api/health. ``--rebuild`` builds a second, fresh working copy with the
app's npm and Next.js caches warm (a redeploy). ``--baseline`` also runs the same install and build
without the sandbox in another copy, the named baseline for the sandbox's overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from engine.dbpath.importer import import_preview
from engine.webbuild import build, preflight, transform
from tests.servers.asgi import free_port
from tests.webbuild.apps import EXAMPLES

PG_ADMIN = os.environ.get("LAUNCHDECK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _database(app: str, target: str, root: Path) -> str:
    if target in ("local-postgres", "neon"):
        name = f"ld_measure_{app}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    return f"file:{root / 'app.db'}"


def _serve(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, object]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full_env = {
        "PATH": os.environ["PATH"],
        "PORT": str(port),
        "HOSTNAME": "127.0.0.1",
        "NODE_ENV": "production",
        "NEXTAUTH_URL": base,
        **env,
    }
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            try:
                health = httpx.get(f"{base}/api/health", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() - started > 60:
                    raise
                time.sleep(0.05)
        return {
            "ready_s": round(time.monotonic() - started, 2),
            "health": health.status_code,
            "health_body": health.json(),
        }
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()


def _size_mb(folder: Path) -> int:
    return int(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app", choices=["shop", "taskboard"])
    parser.add_argument("target", choices=["local-libsql", "local-postgres"])
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    source = EXAMPLES / args.app
    root = Path(tempfile.mkdtemp(prefix="launchdeck-measure-", dir="/var/tmp"))
    root.chmod(0o711)
    figures: dict[str, object] = {"app": args.app, "target": args.target}
    try:
        started = time.monotonic()
        findings = preflight(source, args.target)
        figures["preflight_s"] = round(time.monotonic() - started, 2)
        figures["findings"] = [str(f) for f in findings]
        started = time.monotonic()
        copy = transform(source, root / "work", args.target)
        figures["transform_s"] = round(time.monotonic() - started, 2)
        url = _database(args.app, args.target, root)
        started = time.monotonic()
        report = import_preview(
            copy.workdir / "prisma" / "schema.prisma",
            source / "preview.sqlite",
            url,
            migrations_dir=root / "migrations",
        )
        figures["import_s"] = round(time.monotonic() - started, 2)
        figures["import_ok"] = report.ok
        env = {"DATABASE_URL": url, "NEXTAUTH_SECRET": "measure-secret-0123456789"}
        npm_cache, next_cache = root / "npm-cache", root / "next-cache"
        result = build(
            copy.workdir,
            env,
            timeout=1200,
            memory_mb=3072,
            log_path=root / "build.log",
            npm_cache=npm_cache,
            build_cache=next_cache,
        )
        figures["sandboxed"] = {
            "sandbox": result.sandbox,
            "install": result.install_command,
            "install_s": result.install_seconds,
            "build_s": result.build_seconds,
            "total_s": result.seconds,
            "peak_memory_mb": round(result.peak_memory_mb or 0),
            "served_mb": _size_mb(result.server_dir),
            "workdir_mb": _size_mb(result.workdir),
        }
        figures["server"] = _serve(result.server_command, result.server_dir, env)
        if args.rebuild:
            again = transform(source, root / "work-again", args.target)
            rebuilt = build(
                again.workdir,
                env,
                timeout=1200,
                memory_mb=3072,
                log_path=root / "rebuild.log",
                npm_cache=npm_cache,
                build_cache=next_cache,
            )
            figures["rebuild_warm_caches"] = {
                "install_s": rebuilt.install_seconds,
                "build_s": rebuilt.build_seconds,
                "total_s": rebuilt.seconds,
            }
        if args.baseline:
            plain = transform(source, root / "work-plain", args.target)
            plain_env = {
                **os.environ,
                **env,
                "PRISMA_SCHEMA_ENGINE_BINARY": "/usr/bin/true",
                "NEXT_TELEMETRY_DISABLED": "1",
                "npm_config_cache": str(root / "npm-cache-plain"),
            }
            timings = {}
            for name, argv in (
                ("install", ["npm", "install" if copy.lockfile_stale else "ci"]),
                ("build", ["npm", "run", "build"]),
            ):
                started = time.monotonic()
                subprocess.run(argv, cwd=plain.workdir, env=plain_env, check=True, capture_output=True)
                timings[f"{name}_s"] = round(time.monotonic() - started, 2)
            figures["baseline_no_sandbox_cold_cache"] = timings
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
