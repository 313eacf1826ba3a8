"""The preflight command as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from engine.webbuild.cli import preflight_command
from tests.webbuild.apps import EXAMPLES, make_app


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("preflight")(preflight_command)
    app.command("noop")(lambda: None)  # two commands: typer keeps "preflight" as a subcommand
    return app


def test_blocking_finding_exits_1_and_names_file_and_line(tmp_path: Path) -> None:
    route = "export const GET = () => prisma.$queryRaw`SELECT id FROM users WHERE at > datetime('now')`;\n"
    app_dir = make_app(tmp_path, {"app/api/recent/route.ts": route})
    result = CliRunner().invoke(_app(), ["preflight", str(app_dir), "--db", "local-postgres"])
    assert result.exit_code == 1
    assert "app/api/recent/route.ts:1: blocking: $queryRaw will fail on PostgreSQL" in result.output


def test_clean_example_exits_0_with_json() -> None:
    result = CliRunner().invoke(_app(), ["preflight", str(EXAMPLES / "shop"), "--db", "neon", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == []


def test_bad_target_exits_2_with_what_to_use() -> None:
    result = CliRunner().invoke(_app(), ["preflight", str(EXAMPLES / "shop"), "--db", "oracle"])
    assert result.exit_code == 2
    assert "use one of local-libsql, turso, local-postgres, neon" in result.output
