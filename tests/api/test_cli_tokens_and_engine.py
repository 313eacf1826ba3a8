"""The CLI on the engine's machine: `launchdeck deploy` with no engine running starts one in the
background that outlives the command (and says so); the first operator token is shown once and never
written in plaintext; tokens are created, listed and revoked from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from engine.config import Settings
from engine.service import find_running_engine
from tests.servers.asgi import free_port


def launchdeck(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_deploy_with_no_engine_starts_one_that_keeps_serving(workspace: Path, tmp_path: Path) -> None:
    app = tmp_path / "tiny"
    app.mkdir()
    (app / "package.json").write_text('{"name": "tiny"}')
    env = {**os.environ, "LAUNCHDECK_ENGINE_PORT": str(free_port())}
    settings = Settings(workspace=workspace)
    try:
        result = launchdeck("deploy", str(app), env=env, cwd=tmp_path)
        assert "started in the background" in result.stderr and "keeps serving" in result.stderr, (
            result.stderr
        )
        assert "first operator token (shown this once" in result.stderr
        first = result.stderr.split("shown this once", 1)[1].splitlines()[1].strip()
        assert first.startswith("ldk_")
        assert result.returncode == 1  # no Prisma schema: the deploy fails, the engine stays
        url = find_running_engine(settings)
        assert url is not None, "the background engine ended with the command"
        assert httpx.get(f"{url}/api/apps", headers={"Authorization": f"Bearer {first}"}).status_code == 200
        assert not (workspace / "operator.token").exists()
        assert first not in "".join(p.read_text(errors="replace") for p in workspace.rglob("*.log"))
        # The command's own token was revoked when it ended; the first operator token still works.
        listed = launchdeck("tokens", "list", "--json", env={**env, "LAUNCHDECK_TOKEN": first}, cwd=tmp_path)
        tokens = json.loads(listed.stdout)
        session = [t for t in tokens if t["name"] == "launchdeck deploy (this machine)"]
        assert session and all(t["revoked_at"] for t in session)
    finally:
        stopped = launchdeck("stop", env=env, cwd=tmp_path)
    assert "stopped the engine" in stopped.stdout, stopped.stdout + stopped.stderr
    assert find_running_engine(settings) is None


def test_tokens_create_list_revoke_on_the_machine(workspace: Path, tmp_path: Path) -> None:
    env = dict(os.environ)
    created = launchdeck("tokens", "create", "admin", "--role", "operator", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    admin = created.stdout.strip()
    assert admin.startswith("ldk_")  # no engine running: written to the store directly, shown once
    with_admin = {**env, "LAUNCHDECK_TOKEN": admin}
    platform = launchdeck(
        "tokens", "create", "builder", "--role", "platform", "--user", "u1", "--expires-in-days", "30",
        env=with_admin, cwd=tmp_path,
    )  # fmt: skip
    assert platform.returncode == 0, platform.stderr
    listed = json.loads(launchdeck("tokens", "list", "--json", env=with_admin, cwd=tmp_path).stdout)
    builder = next(t for t in listed if t["name"] == "builder")
    assert builder["users"] == ["u1"] and builder["expires_at"] and builder["revoked_at"] is None
    revoked = launchdeck("tokens", "revoke", builder["id"], env=with_admin, cwd=tmp_path)
    assert revoked.returncode == 0 and "revoked builder" in revoked.stdout, revoked.stderr
    as_builder = launchdeck("apps", env={**env, "LAUNCHDECK_TOKEN": platform.stdout.strip()}, cwd=tmp_path)
    assert as_builder.returncode == 1 and "revoked" in as_builder.stderr
