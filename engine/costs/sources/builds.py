"""Builds and store fees, read from the pipelines' own journal: what each run cost, in the hour it finished.

- ``LocalBuildSource``: how long each web build ran on this machine (the ``build`` step: install and build in
  the sandbox), as ``build_ms``. The sandbox reports wall time, not CPU time, so wall time is what is recorded.
- ``MobileCostSource``: the readings mobile and desktop runs leave (``engine.mobile.costs``): EAS builds per
  platform and their minutes, GitHub Actions minutes, and store fees. A failed EAS build is billed too; its
  readings are in the run's log. A store fee's idempotency key (Apple per owner and year, Google per owner)
  is charged once: by the first run that carried it.

A run's readings belong to the hour the run finished, so an hour collected after it ended is complete, and
collecting it again adds nothing (the ledger's key is source, app and hour).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from engine.costs.usage import Reading, hour_floor
from engine.store import Store

COST_LOG_PREFIX = "cost reading: "
STORE_PROVIDERS = {"apple": "apple", "google_play": "google"}  # the readings' provider -> the price sheet


class LocalBuildSource:
    name = "local-builds"

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self, hour_start: datetime) -> list[Reading]:
        start = hour_floor(hour_start)
        rows = self.store.fetchall(
            "SELECT CAST(d.app_id AS TEXT) AS app_id,"
            " sum(epoch_ms(s.finished_at) - epoch_ms(s.started_at)) AS ms"
            " FROM step_runs s JOIN deployments d ON d.id = s.deployment_id"
            " WHERE d.pipeline = 'web' AND s.name = 'build' AND s.started_at IS NOT NULL"
            " AND s.finished_at >= ? AND s.finished_at < ? GROUP BY ALL",
            [start, start + timedelta(hours=1)],
        )
        return [
            Reading(r["app_id"], "local-build", self.name, start, {"build_ms": int(r["ms"])})
            for r in rows
            if r["ms"]
        ]


def _logged(store: Store, deployment_id: str) -> list[dict[str, Any]]:
    """The readings a failed run logged (its state is not kept when a step fails)."""
    lines = store.fetchall(
        "SELECT line FROM deployment_log WHERE deployment_id = ? AND starts_with(line, ?) ORDER BY id",
        [deployment_id, COST_LOG_PREFIX],
    )
    found = []
    for row in lines:
        try:
            found.append(json.loads(row["line"].removeprefix(COST_LOG_PREFIX)))
        except ValueError:
            continue
    return found


def run_readings(store: Store, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    state = (
        json.loads(deployment["state"]) if isinstance(deployment["state"], str) else deployment["state"] or {}
    )
    found = list(state.get("cost_readings") or [])
    keys = {r.get("idempotency_key") for r in found}
    found += [r for r in _logged(store, str(deployment["id"])) if r.get("idempotency_key") not in keys]
    return found


class MobileCostSource:
    """EAS builds and minutes, CI minutes and store fees of the mobile and desktop runs that finished in an hour."""

    name = "mobile-costs"

    def __init__(self, store: Store) -> None:
        self.store = store

    def _runs(self, start: datetime | None, end: datetime) -> list[dict[str, Any]]:
        window = "d.finished_at >= ? AND " if start is not None else ""
        params: list[Any] = ([start] if start is not None else []) + [end]
        return self.store.fetchall(
            "SELECT d.id, CAST(d.app_id AS TEXT) AS app_id, d.state, d.finished_at FROM deployments d"
            f" WHERE d.pipeline IN ('mobile', 'desktop') AND {window}d.finished_at < ?"
            " ORDER BY d.finished_at, d.id",
            params,
        )

    def _fee_payers(self, end: datetime) -> dict[str, str]:
        """Each store fee key -> the id of the first run (up to ``end``) that carried it."""
        payers: dict[str, str] = {}
        for run in self._runs(None, end):
            for reading in run_readings(self.store, run):
                key = reading.get("idempotency_key")
                if reading.get("provider") in STORE_PROVIDERS and key and key not in payers:
                    payers[key] = str(run["id"])
        return payers

    def collect(self, hour_start: datetime) -> list[Reading]:
        start = hour_floor(hour_start)
        end = start + timedelta(hours=1)
        runs = self._runs(start, end)
        if not runs:
            return []
        payers = self._fee_payers(end)
        per_key: dict[tuple[str, str, str], dict[str, int]] = {}  # (app, provider, source) -> metrics
        for run in runs:
            for reading in run_readings(self.store, run):
                for provider, source, metrics in _metrics(reading, payers, str(run["id"])):
                    totals = per_key.setdefault((run["app_id"], provider, source), {})
                    for metric, value in metrics.items():
                        totals[metric] = totals.get(metric, 0) + value
        return [
            Reading(app_id, provider, source, start, metrics)
            for (app_id, provider, source), metrics in sorted(per_key.items())
        ]


def _metrics(
    reading: dict[str, Any], payers: dict[str, str], run_id: str
) -> Iterable[tuple[str, str, dict[str, int]]]:
    """(ledger provider, source, metrics) for one of a run's readings."""
    provider, meter = reading.get("provider"), reading.get("meter")
    quantity = int(reading.get("quantity") or 0)
    if provider == "eas":
        platform = (reading.get("dimensions") or {}).get("platform")
        if meter == "build" and platform in ("android", "ios"):
            yield "eas", "eas-builds", {f"builds_{platform}": quantity}
        elif meter == "build_minutes":
            yield "eas", "eas-builds", {"build_minutes": quantity}
    elif provider == "github_actions" and meter == "run_minutes":
        yield "github-actions", "ci-runs", {"build_minutes": quantity}
    elif provider in STORE_PROVIDERS and payers.get(str(reading.get("idempotency_key"))) == run_id:
        yield (
            STORE_PROVIDERS[str(provider)],
            "store-fees",
            {"fee_cents": int(reading.get("amount_cents") or 0)},
        )
