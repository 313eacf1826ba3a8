"""`launchdeck db transform|ddl|import` through the typer sub-app, with their exit codes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from engine.cli.db import EXIT_BAD_INPUT, EXIT_NOT_VERIFIED, app
from engine.dbpath import node
from tests.dbpath.conftest import FIDELITY_SCHEMA, HERE
from tests.dbpath.fidelity import build_source

runner = CliRunner()


def test_transform_prints_a_validated_schema() -> None:
    result = runner.invoke(app, ["transform", "--schema", str(FIDELITY_SCHEMA), "--to", "postgresql"])
    assert result.exit_code == 0, result.output
    assert 'provider = "postgresql"' in result.stdout and "model Membership {" in result.stdout


def test_ddl_prints_prismas_sql() -> None:
    result = runner.invoke(app, ["ddl", "--schema", str(FIDELITY_SCHEMA), "--dialect", "sqlite"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (HERE / "expected" / "fidelity.sqlite.sql").read_text()


def test_import_json_report_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "prisma").mkdir()
    schema = tmp_path / "prisma" / "schema.prisma"
    schema.write_text(FIDELITY_SCHEMA.read_text())
    source = build_source(tmp_path / "preview.sqlite")
    target = f"file:{tmp_path / 'prod.db'}"
    args = ["import", "--schema", str(schema), "--from", str(source), "--to", target, "--json"]

    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert set(report) >= {"tables", "rejected", "verified", "seconds"}
    assert report["verified"] is True and report["rejected"] == []
    assert report["tables"]["memberships"] == {"source_rows": 3, "imported_rows": 3, "rejected_rows": 0}

    again = runner.invoke(app, args)  # the target now holds tables
    assert again.exit_code == EXIT_BAD_INPUT
    assert "--replace" in json.loads(again.stdout)["error"]

    with sqlite3.connect(source) as conn:
        conn.execute("UPDATE accounts SET active = 7 WHERE id = 3")
    conn.close()
    rejected = runner.invoke(app, [*args, "--replace"])
    assert rejected.exit_code == EXIT_NOT_VERIFIED
    body = json.loads(rejected.stdout)
    assert body["verified"] is False
    assert body["rejected"] == [
        {
            "table": "accounts",
            "key": "id=3",
            "column": "active",
            "value": 7,
            "reason": "not a boolean (expected 0/1 or true/false)",
        }
    ]


def test_import_human_output_names_the_bad_value(tmp_path: Path) -> None:
    (tmp_path / "prisma").mkdir()
    schema = tmp_path / "prisma" / "schema.prisma"
    schema.write_text(FIDELITY_SCHEMA.read_text())
    source = build_source(
        tmp_path / "preview.sqlite",
        extra_accounts=[(9, "x@example.com", 1, "GOLD", "1", None, 0, None, None, None, None)],
    )
    result = runner.invoke(
        app,
        ["import", "--schema", str(schema), "--from", str(source), "--to", f"file:{tmp_path / 'prod.db'}"],
    )
    assert result.exit_code == EXIT_NOT_VERIFIED
    assert "table accounts, row id=9, column plan, value 'GOLD'" in result.stderr
    assert not (tmp_path / "prod.db").exists()


def test_import_runs_prismas_engines_once_and_leaves_no_node_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command line starts Node before the importer loads; the importer takes that run over.
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def counting_popen(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        if str(node.SCRIPT) in args:
            started.append(args)
        return real_popen(args, **kwargs)

    monkeypatch.setattr(node.subprocess, "Popen", counting_popen)
    (tmp_path / "prisma").mkdir()
    schema = tmp_path / "prisma" / "schema.prisma"
    schema.write_text(FIDELITY_SCHEMA.read_text())
    source = build_source(tmp_path / "preview.sqlite")
    args = ["import", "--schema", str(schema), "--to", f"file:{tmp_path / 'prod.db'}", "--json"]

    ok = runner.invoke(app, [*args, "--from", str(source)])
    assert ok.exit_code == 0, ok.output
    assert len(started) == 1

    # A failed import does not leave Node waiting on a pipe nobody reads.
    missing = runner.invoke(app, [*args, "--from", str(tmp_path / "missing.sqlite")])
    assert missing.exit_code == EXIT_BAD_INPUT
    assert "missing.sqlite" in json.loads(missing.stdout)["error"]
    assert len(started) == 2
    engines = [p for p in psutil.Process().children() if str(node.SCRIPT) in " ".join(p.cmdline())]
    _, alive = psutil.wait_procs(engines, timeout=10)
    assert alive == []
