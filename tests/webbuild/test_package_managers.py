"""The app's own package manager: chosen by its lockfile, fetched by corepack from the npm registry (the
only registry the build reaches), inside the build sandbox."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.webbuild.build import _sandbox_env, package_manager, proxy_env
from engine.webbuild.egress import EgressProxy
from engine.webbuild.sandbox import EGRESS_PORT, bwrap_usable, run_sandboxed


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
    for name in ("work", "tmp/home", "cache"):
        (root / name).mkdir(parents=True)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(("manager", "version"), [("pnpm", "9.15.0"), ("yarn", "1.22.22")])
def test_corepack_fetches_the_apps_manager_in_the_sandbox(area: Path, manager: str, version: str) -> None:
    if not bwrap_usable():
        pytest.fail("bubblewrap is not usable here: apt-get install bubblewrap")
    (area / "work" / "package.json").write_text(
        json.dumps({"name": "app", "packageManager": f"{manager}@{version}"})
    )
    env = _sandbox_env(
        {}, memory_mb=1024, kind="bwrap", workdir=area / "work", tmp=area / "tmp", npm_cache=area / "cache"
    )
    env.update(proxy_env())  # the registry through the egress proxy, as build() sets it up
    log_path = area / "run.log"
    net = area / "net"
    net.mkdir()
    with log_path.open("ab") as log, EgressProxy(net / "egress.sock"):
        outcome = run_sandboxed(
            ["corepack", manager, "--version"],
            kind="bwrap",
            workdir=area / "work",
            tmp=area / "tmp",
            npm_cache=area / "cache",
            env=env,
            timeout=120,
            memory_mb=1024,
            max_processes=64,
            log=log,
            net_dir=net,
            forward={EGRESS_PORT: "egress.sock"},
        )
    output = log_path.read_text(errors="replace")
    assert outcome.returncode == 0, output
    assert output.strip().splitlines()[-1] == version
