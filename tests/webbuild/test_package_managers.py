"""The app's own package manager: chosen by its lockfile, fetched by corepack from the npm registry (the
only registry the build reaches), inside the build sandbox."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.webbuild.build import build, package_manager


@pytest.mark.parametrize(
    ("lockfiles", "manager"),
    [
        (["package-lock.json"], "npm"),
        (["pnpm-lock.yaml"], "pnpm"),
        (["yarn.lock"], "yarn"),
        (["bun.lock"], "npm"),  # no bun here: npm resolves package.json
        ([], "npm"),
    ],
)
def test_manager_follows_the_lockfile(tmp_path: Path, lockfiles: list[str], manager: str) -> None:
    for name in lockfiles:
        (tmp_path / name).write_text("")
    assert package_manager(tmp_path) == manager


@pytest.fixture
def area() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="launchdeck-corepack-test-", dir="/var/tmp"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(("manager", "version"), [("pnpm", "9.15.0"), ("yarn", "1.22.22")])
def test_corepack_installs_with_the_apps_manager_in_the_sandbox(
    area: Path, manager: str, version: str
) -> None:
    """A real build: the install step is `corepack <manager> install`, through the build's registry-only
    egress, and the build step runs the manager corepack fetched."""
    work = area / "work"
    work.mkdir()
    package = {"name": "app", "private": True, "packageManager": f"{manager}@{version}",
               "scripts": {"build": f"corepack {manager} --version > built.txt"}}  # fmt: skip
    (work / "package.json").write_text(json.dumps(package))
    (work / ("pnpm-lock.yaml" if manager == "pnpm" else "yarn.lock")).write_text("")
    result = build(work, {}, timeout=300, memory_mb=1024, log_path=area / "build.log")
    assert result.install_command == f"corepack {manager}"
    log = (area / "build.log").read_text()
    assert f"$ corepack {manager} install" in log
    assert (work / "built.txt").read_text().strip() == version
