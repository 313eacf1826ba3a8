"""Benchmark: the install alone, with the machine's package store cold and warm (issue 20, deliverable 2).

In one run, for a copy of an example app whose build script is replaced by `true` (so only the install
is timed): the sandboxed install of a first app with an empty package store (packages from the
registry), of a second app with the store warm (tarballs copied from the store, verified by npm), of the
first app again (node_modules reused), and the bare host `npm ci` with npm's cache warm, for reference.

    .venv/bin/python bench/install_store.py [--app shop|PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from engine.webbuild import build

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"


def install_only_copy(source: Path, destination: Path) -> Path:
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("node_modules", ".next"))
    package = json.loads((destination / "package.json").read_text())
    package["scripts"]["build"] = "true"
    (destination / "package.json").write_text(json.dumps(package, indent=2))
    return destination


def sandboxed(root: Path, source: Path, app: str, label: str) -> None:
    work = install_only_copy(source, root / f"work-{app}")
    log = root / "logs" / f"{app}.log"
    log.unlink(missing_ok=True)
    began = time.perf_counter()
    result = build(
        work,
        {},
        timeout=1800,
        memory_mb=3072,
        log_path=log,
        npm_cache=root / "npm-cache" / app,
        deps_cache=root / "deps-cache" / app,
        package_store=root / "package-store",
    )
    wall = time.perf_counter() - began
    notes = [line for line in log.read_text().splitlines() if line.startswith("[dependencies]")]
    print(
        f"{label:<55} {result.install_command:<32} install {result.install_seconds:6.1f} s  whole {wall:6.1f} s"
    )
    for note in notes:
        print(f"    {note}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="shop")
    args = parser.parse_args()
    source = Path(args.app) if Path(args.app).is_dir() else EXAMPLES / args.app
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="launchdeck-store-", dir="/var/tmp") as name:
        root = Path(name)
        root.chmod(0o711)
        sandboxed(root, source, "first", "first app, package store cold (registry)")
        sandboxed(root, source, "second", "second app, package store warm")
        sandboxed(root, source, "first", "first app again, same lockfile")
        bare = install_only_copy(source, root / "bare")
        env = {
            **os.environ,
            "npm_config_cache": str(root / "npm-cache" / "first"),
            "npm_config_prefer_offline": "true",
        }
        began = time.perf_counter()
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=bare, env=env, check=True, capture_output=True
        )
        print(
            f"{'bare host npm ci, npm cache warm (reference)':<55} {'npm ci':<32} install {time.perf_counter() - began:6.1f} s"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores shared by the team: figures vary)")


if __name__ == "__main__":
    main()
