"""The cost commands print what the cost functions compute, and refuse bad input with a fix."""

from __future__ import annotations

import importlib
import json
from datetime import datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from engine.costs.ledger import ingest
from engine.costs.usage import Reading
from engine.store import Store
from tests.costs.conftest import add_app

runner = CliRunner()
# engine/cli/__init__.py may define a `costs` command function that shadows the submodule's name.
costs_cli = importlib.import_module("engine.cli.costs")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    path = tmp_path / "ld.duckdb"
    store = Store(path)
    app_id = add_app(store, "shop", user_id="ada", tier="starter")
    ingest(store, [Reading(app_id, "local", "edge", datetime(2026, 10, 1, 5), {"requests": 11_000_000})])
    store.close()
    monkeypatch.setattr(costs_cli, "store_factory", lambda: Store(path))
    root = typer.Typer()
    root.add_typer(costs_cli.costs_app, name="costs")
    root.add_typer(costs_cli.margins_app, name="margins")
    root.add_typer(costs_cli.pricing_app, name="pricing")
    return root


def test_costs_and_margins_commands(cli: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["costs", "--month", "2026-10", "--by", "provider", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    cloudflare = next(r for r in data["rows"] if r["provider"] == "cloudflare")
    assert cloudflare["bill_cents"] == 530  # $5 + 1M requests over the quota at $0.30/M
    result = runner.invoke(cli, ["costs", "--month", "2026-10"])
    assert "Railway reserved" in result.output and "Railway measured" in result.output
    (shop,) = [line.split() for line in result.output.splitlines() if line.strip().startswith("shop")]
    # shop never ran on this machine: its measured baseline falls back to the reserved size, marked *
    assert shop[2:] == ["$15.00", "$15.00", "*"]
    assert "did not run on this machine" in result.output
    result = runner.invoke(cli, ["margins", "--month", "2026-10", "--export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "starter" in result.output and (tmp_path / "out" / "tier_margins_2026-10.csv").exists()


def test_bad_input_says_what_to_fix(cli: typer.Typer) -> None:
    result = runner.invoke(cli, ["costs", "--month", "October"])
    assert result.exit_code == 1 and "is not YYYY-MM" in result.output
    result = runner.invoke(cli, ["costs", "--month", "2026-10", "--by", "color"])
    assert "not one of: app, provider, tier" in result.output
    result = runner.invoke(cli, ["pricing", "simulate", "--tier-mix", "starter=0.5"])
    assert result.exit_code == 1 and "adding up to 1" in result.output


def test_pricing_simulate(cli: typer.Typer) -> None:
    result = runner.invoke(cli, ["pricing", "simulate", "--apps", "500", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["provider_bills_cents"]["cloudflare"] == 500
    railway = json.loads(
        runner.invoke(cli, ["pricing", "simulate", "--architecture", "railway", "--json"]).output
    )
    assert railway["total_cents"] >= 500 * 1500
