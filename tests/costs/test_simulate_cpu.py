"""CPU time per request in the what-if: Workers, Workers for Platforms and Vercel bill it, to the cent as their
price sheets say; the default is the fleet's measured median, else the documented 7 ms; the Railway baseline
comes in two kinds (reserved size, measured use)."""

from __future__ import annotations

import importlib
import json
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from engine.costs.ledger import ingest
from engine.costs.sheets import default_catalog
from engine.costs.simulate import Scenario, measured_cpu_ms_per_request, simulate
from engine.costs.usage import Reading
from engine.store import Store
from tests.costs.conftest import add_app

FLEET = Scenario(apps=500, active_share=0.6, requests_per_active_app=3_000_000, month=date(2026, 12, 1))
costs_cli = importlib.import_module("engine.cli.costs")


def _expected_host_cents(provider: str, cpu_ms: int) -> int:
    """The host's bill for FLEET from its sheet: base fee, then every meter over what it includes."""
    _, plan = default_catalog().plan_for(provider, FLEET.month)
    requests = 300 * 3_000_000  # 60% of 500 apps active
    used = {
        "requests": requests,
        "compute_ms": requests * cpu_ms,
        "bandwidth_bytes": requests * FLEET.bytes_per_request,
        "scripts": 500,
    }
    dollars = plan.base_fee
    for meter in plan.meters:
        dollars += max(Decimal(0), used[meter.metric] - meter.included) * meter.price / meter.per
    return int((dollars * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize(
    ("architecture", "provider"),
    [
        ("turso+cloudflare", "cloudflare"),
        ("turso+cloudflare-platforms", "cloudflare-platforms"),
        ("turso+vercel", "vercel"),
    ],
)
def test_more_cpu_per_request_bills_the_host_more_to_the_cent(architecture: str, provider: str) -> None:
    bills = [
        simulate(
            Scenario(**{**FLEET.__dict__, "architecture": architecture, "cpu_ms_per_request": Decimal(ms)})
        )["provider_bills_cents"][provider]
        for ms in (0, 5, 10)
    ]
    assert bills == [_expected_host_cents(provider, ms) for ms in (0, 5, 10)]
    assert bills[0] < bills[1] < bills[2]
    if provider == "cloudflare":  # the figures: $272 requests only, then $89.40 and $179.40 of CPU
        assert bills == [27_200, 36_140, 45_140]


def test_the_database_is_not_billed_for_the_hosts_cpu() -> None:
    neon = [
        simulate(
            Scenario(
                **{**FLEET.__dict__, "architecture": "neon+cloudflare", "cpu_ms_per_request": Decimal(ms)}
            )
        )["provider_bills_cents"]["neon"]
        for ms in (0, 10)
    ]
    assert neon[0] == neon[1]  # Neon's compute_ms are CU-milliseconds: a Worker's CPU is not one


def test_two_railway_baselines() -> None:
    reserved = simulate(Scenario(**{**FLEET.__dict__, "architecture": "railway"}))
    measured = simulate(Scenario(**{**FLEET.__dict__, "architecture": "railway-measured"}))
    assert reserved["total_cents"] >= 500 * 1500  # every app reserves 0.5 vCPU + 0.5 GB all month
    assert 0 < measured["total_cents"] < reserved["total_cents"]


def test_the_default_is_the_fleets_measured_median(store: Store) -> None:
    assert measured_cpu_ms_per_request(store) is None
    for name, cpu, requests in (("a", 4_000, 1_000), ("b", 12_000, 1_000), ("c", 9_000, 1_000)):
        app = add_app(store, name)
        ingest(
            store,
            [Reading(app, "local", "edge", datetime(2026, 12, 2, 5), {"requests": requests, "cpu_ms": cpu})],
        )
    assert measured_cpu_ms_per_request(store) == Decimal("9.000")


def test_pricing_simulate_takes_cpu_per_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ld.duckdb"
    store = Store(path)
    app = add_app(store, "a")
    ingest(
        store, [Reading(app, "local", "edge", datetime(2026, 12, 2, 5), {"requests": 2_000, "cpu_ms": 6_000})]
    )
    store.close()
    monkeypatch.setattr(costs_cli, "store_factory", lambda: Store(path))
    root = typer.Typer()
    root.add_typer(costs_cli.pricing_app, name="pricing")
    runner = CliRunner()
    args = [
        "pricing",
        "simulate",
        "--apps",
        "500",
        "--active-share",
        "0.6",
        "--requests",
        "3000000",
        "--json",
    ]
    given = json.loads(runner.invoke(root, [*args, "--cpu-ms-per-request", "5"]).output)
    measured = json.loads(runner.invoke(root, args).output)
    assert (
        given["provider_bills_cents"]["cloudflare"] == 36_140 and given["cpu_ms_per_request_basis"] == "given"
    )
    assert measured["scenario"]["cpu_ms_per_request"] == "3.000"
    assert measured["cpu_ms_per_request_basis"] == "the fleet's measured median"
    bad = runner.invoke(root, [*args, "--cpu-ms-per-request", "lots"])
    assert bad.exit_code == 1 and "is not a number of milliseconds" in bad.output
