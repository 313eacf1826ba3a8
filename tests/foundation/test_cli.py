"""The `launchdeck` command: every subcommand explains itself; unbuilt ones say so and exit non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LAUNCHDECK = [sys.executable, "-m", "engine.cli"]
SUBCOMMANDS = [
    "up", "engine", "console", "deploy", "status", "apps", "rollback", "suspend", "resume",
    "destroy", "db", "usage", "costs", "margins", "vault",
]  # fmt: skip


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAUNCHDECK, *args], capture_output=True, text=True, timeout=120, env=env)


def test_every_subcommand_has_help() -> None:
    from typer.testing import CliRunner

    from engine.cli import app

    top = run("--help")
    assert top.returncode == 0
    for name in SUBCOMMANDS:
        assert name in top.stdout
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


def test_bad_setting_is_one_clear_message(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "LAUNCHDECK_ENGINE_PORT": "eighty", "LAUNCHDECK_WORKSPACE": str(tmp_path)}
    result = run("apps", env=env)
    assert result.returncode != 0
    assert "LAUNCHDECK_ENGINE_PORT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["apps", "vault"])
def test_embedded_engine_serves_a_command_when_none_runs(workspace: Path, command: str) -> None:
    import os

    env = {**os.environ, "LAUNCHDECK_WORKSPACE": str(workspace)}
    args = ["apps", "--json"] if command == "apps" else ["vault", "rotate"]
    result = run(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert (workspace / "launchdeck.duckdb").exists()
    if command == "vault":
        assert "re-encrypted 0 secret(s)" in result.stdout
