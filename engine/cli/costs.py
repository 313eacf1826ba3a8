"""Cost commands: ``usage collect``, ``costs``, ``margins``, ``pricing simulate``.

Mount in engine/cli/__init__.py::

    costs_cli = importlib.import_module("engine.cli.costs")  # the package may have a `costs` function
    app.add_typer(costs_cli.usage_app, name="usage")
    app.add_typer(costs_cli.costs_app, name="costs")
    app.add_typer(costs_cli.margins_app, name="margins")
    app.add_typer(costs_cli.pricing_app, name="pricing")

They open the store through ``store_factory`` (default: the workspace's DuckDB file, which works when no engine
holds it); the engine's CLI can replace it with one that goes through a running engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.config import load_settings
from engine.costs.margins import export_month, margins_for
from engine.costs.money import cents_to_dollars
from engine.costs.rollup import RAILWAY_MEASURED, RAILWAY_RESERVED_ONLY, cost_month
from engine.costs.simulate import (
    ARCHITECTURES,
    DOCUMENTED_CPU_MS_PER_REQUEST,
    Scenario,
    measured_cpu_ms_per_request,
    simulate,
)
from engine.errors import InputError, LaunchdeckError
from engine.store import Store


def _default_store() -> Store:
    conf = load_settings()
    return Store(conf.store_path, memory_limit=conf.duckdb_memory_limit)


store_factory: Callable[[], Store] = _default_store

usage_app = typer.Typer(help="Metered usage: collect an hour from every usage source.", no_args_is_help=True)
costs_app = typer.Typer(
    help="Cost per app, provider or tier for a month, in cents.", invoke_without_command=True
)
margins_app = typer.Typer(
    help="Revenue minus cost per tier and app for a month.", invoke_without_command=True
)
pricing_app = typer.Typer(help="What-if pricing for a synthetic fleet.", no_args_is_help=True)


def _this_month() -> str:
    return datetime.now().strftime("%Y-%m")


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def _fail(exc: LaunchdeckError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@usage_app.command("collect")
def usage_collect(
    hour: Annotated[
        str | None, typer.Option(help="Hour to collect, ISO UTC (default: the last full hour)")
    ] = None,
) -> None:
    """Collect one hour of usage from every local and registered source into the ledger."""
    from pipelines.metering import collect_hour

    try:
        hour_start = datetime.fromisoformat(hour) if hour else None
    except ValueError:
        _fail(InputError(f"--hour {hour!r} is not an ISO date-time such as 2026-11-26T13:00"))
        return
    try:
        with closing(store_factory()) as store:
            result = collect_hour(store, load_settings(), hour_start=hour_start)
    except LaunchdeckError as exc:
        _fail(exc)
        return
    typer.echo(
        f"{result.hour_start:%Y-%m-%d %H:00} UTC: {result.ingested.added} readings added, "
        f"{result.ingested.duplicates} already in the ledger, {result.ingested.refused_closed} for a closed month"
    )
    for source, error in result.errors.items():
        typer.echo(f"  {source}: {error}", err=True)


@costs_app.callback()
def costs(
    month: Annotated[str, typer.Option(help="YYYY-MM")] = "",
    by: Annotated[str, typer.Option(help="app | provider | tier")] = "app",
    method: Annotated[
        str | None, typer.Option(help="base-fee allocation: even | usage | metric:<name>")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Costs for a month, in cents, with the Railway baseline beside each app."""
    try:
        with closing(store_factory()) as store:
            result = cost_month(store, month or _this_month(), method=method)
            rows = result.by(by)
    except LaunchdeckError as exc:
        _fail(exc)
        return
    if as_json:
        _echo_json(
            {
                "month": f"{result.month:%Y-%m}",
                "closed": result.closed,
                "method": result.method,
                "total_cents": result.total_cents(),
                "rows": rows,
            }
        )
        return
    typer.echo(
        f"{result.month:%Y-%m} ({'closed' if result.closed else 'open'}, allocation {result.method}): "
        f"{cents_to_dollars(result.total_cents())}"
    )
    if by in ("app", "tier"):
        typer.echo(f"  {'':<32} {'cost':>12}  {RESERVED_LABEL:>20}  {MEASURED_LABEL}")
    for row in rows:
        key = row.get("name") or row.get("provider") or row.get("tier")
        cents = row.get("cost_cents", row.get("bill_cents", 0))
        typer.echo(f"  {key:<32} {cents_to_dollars(cents):>12}{_baselines(row)}")
    if by == "app" and any(r.get("railway_basis") not in (None, RAILWAY_MEASURED) for r in rows):
        typer.echo(f"  * {RAILWAY_RESERVED_ONLY}: its measured column repeats the reserved size")


RESERVED_LABEL = "Railway reserved"
MEASURED_LABEL = "Railway measured"


def _baselines(row: dict[str, Any]) -> str:
    """Both Railway baselines of an app or tier row: the reserved size and what was measured."""
    if "railway_baseline_cents" not in row or row.get("app_id", "") is None:
        return ""
    reserved = row["railway_baseline_cents"]
    measured = row.get("railway_measured_cents")
    if "railway_basis" in row:  # an app: a missing measurement falls back to the reserved size, marked
        shown = cents_to_dollars(reserved if measured is None else measured) + (
            "" if measured is not None else " *"
        )
    else:  # a tier: measured apps at their measurement, the others at the reserved size
        shown = (
            f"{cents_to_dollars(measured or 0)} ({row.get('apps_measured', 0)}/{row.get('apps', 0)} measured)"
        )
    return f"  {cents_to_dollars(reserved):>20}  {shown}"


@margins_app.callback()
def margins(
    month: Annotated[str, typer.Option(help="YYYY-MM")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    export: Annotated[Path | None, typer.Option(help="write Parquet and CSV files to this folder")] = None,
    least: Annotated[int, typer.Option(help="how many least profitable apps to list")] = 5,
) -> None:
    """Margins per tier (revenue minus Stripe fees minus allocated cost) and the least profitable apps."""
    try:
        with closing(store_factory()) as store:
            result = margins_for(store, cost_month(store, month or _this_month()))
            files = export_month(store, result.month, export) if export else []
    except LaunchdeckError as exc:
        _fail(exc)
        return
    if as_json:
        _echo_json(
            {
                "month": f"{result.month:%Y-%m}",
                "revenue_source": result.revenue_source,
                "totals": result.totals(),
                "tiers": result.tiers,
                "idle_cents": result.idle_cents,
                "least_profitable": result.least_profitable(least),
                "files": [str(f) for f in files],
            }
        )
        return
    typer.echo(f"{result.month:%Y-%m} (revenue from {result.revenue_source})")
    for tier in result.tiers:
        percent = "-" if tier["margin_percent"] is None else f"{tier['margin_percent']}%"
        typer.echo(
            f"  {tier['tier']:<12} revenue {cents_to_dollars(tier['revenue_cents']):>10}  cost "
            f"{cents_to_dollars(tier['cost_cents']):>10}  margin {cents_to_dollars(tier['margin_cents']):>10} ({percent})"
            f"  {RESERVED_LABEL} {cents_to_dollars(tier['railway_baseline_cents'])}, {MEASURED_LABEL} "
            f"{cents_to_dollars(tier['railway_measured_cents'])} ({tier['apps_measured']}/{tier['apps']} apps measured)"
        )
    typer.echo(f"  idle (no app) cost {cents_to_dollars(result.idle_cents)}")
    for app in result.least_profitable(least):
        typer.echo(
            f"  least profitable: {app['name']} ({app['tier']}) {cents_to_dollars(app['margin_cents'])}"
        )
    for path in files:
        typer.echo(f"  wrote {path}")


def _cpu_per_request(given: str | None) -> tuple[Decimal, str]:
    """The CPU time per request to simulate with, and where it came from."""
    if given is not None:
        return Decimal(given), "given"
    try:
        with closing(store_factory()) as store:
            measured = measured_cpu_ms_per_request(store)
    except (LaunchdeckError, typer.Exit):  # the store cannot be read here (an engine holds it)
        return DOCUMENTED_CPU_MS_PER_REQUEST, "documented (the store was not readable for a measured median)"
    if measured is not None:
        return measured, "the fleet's measured median"
    return DOCUMENTED_CPU_MS_PER_REQUEST, "documented: Cloudflare's Workers pricing examples"


@pricing_app.command("simulate")
def pricing_simulate(
    apps: Annotated[int, typer.Option(help="apps in the fleet")] = 500,
    active_share: Annotated[float, typer.Option(help="share of apps with traffic, 0-1")] = 0.2,
    reads: Annotated[int, typer.Option(help="rows read per active app per month")] = 1_000_000,
    writes: Annotated[int, typer.Option(help="rows written per active app per month")] = 20_000,
    requests: Annotated[int, typer.Option(help="requests per active app per month")] = 30_000,
    tier_mix: Annotated[
        str, typer.Option(help="tier=share,... adding up to 1")
    ] = "starter=0.7,pro=0.25,business=0.05",
    architecture: Annotated[str, typer.Option(help=" | ".join(ARCHITECTURES))] = "turso+cloudflare",
    cpu_ms_per_request: Annotated[
        str | None,
        typer.Option(
            help="CPU milliseconds per request that Workers and Vercel Functions bill (default: the fleet's "
            f"measured median, else {DOCUMENTED_CPU_MS_PER_REQUEST} ms from Cloudflare's pricing examples)"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Cost, revenue and margin of a synthetic fleet, with the same sheets and model as real months."""
    try:
        mix = {k.strip(): float(v) for k, v in (part.split("=") for part in tier_mix.split(",") if part)}
    except ValueError:
        _fail(InputError(f"--tier-mix {tier_mix!r} is not tier=share,... (for example starter=0.7,pro=0.3)"))
        return
    try:
        cpu, cpu_basis = _cpu_per_request(cpu_ms_per_request)
    except InvalidOperation:
        _fail(
            InputError(f"--cpu-ms-per-request {cpu_ms_per_request!r} is not a number of milliseconds, e.g. 5")
        )
        return
    except LaunchdeckError as exc:
        _fail(exc)
        return
    try:
        result = simulate(
            Scenario(
                apps=apps,
                active_share=active_share,
                reads_per_active_app=reads,
                writes_per_active_app=writes,
                requests_per_active_app=requests,
                tier_mix=mix,
                architecture=architecture,
                cpu_ms_per_request=cpu,
            )
        )
    except LaunchdeckError as exc:
        _fail(exc)
        return
    result["cpu_ms_per_request_basis"] = cpu_basis
    if as_json:
        _echo_json(result)
        return
    typer.echo(
        f"{architecture}, {apps} apps, {active_share:.0%} active, {cpu} ms CPU per request ({cpu_basis}): "
        f"{cents_to_dollars(result['total_cents'])}/month "
        f"({cents_to_dollars(round(result['per_app_cents']['mean']))}/app)"
    )
    for problem in result.get("limit_problems", []):
        typer.echo(f"  limit: {problem}")
    for provider, cents in result["provider_bills_cents"].items():
        typer.echo(f"  {provider:<22} {cents_to_dollars(cents):>12}")
    typer.echo(
        f"  revenue {cents_to_dollars(result['revenue_cents'])}, Stripe fees "
        f"{cents_to_dollars(result['payment_fee_cents'])}, margin {cents_to_dollars(result['margin_cents'])} "
        f"({result['margin_percent']}%)"
    )
