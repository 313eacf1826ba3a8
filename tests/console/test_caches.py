"""The engine keeps the console's figures computed: warmed at start, and never shown stale after a change."""

from __future__ import annotations

import time
from typing import Any

from engine.client import EngineClient
from tests.console.conftest import RunningEngine


def fleet_by_name(client: EngineClient) -> dict[str, dict[str, Any]]:
    fleet = client.fleet()
    return {row[1]: dict(zip(fleet["columns"], row, strict=True)) for row in fleet["rows"]}


def test_engine_warms_the_console_figures_at_start(running_engine: RunningEngine) -> None:
    with EngineClient(running_engine.url, running_engine.finance) as client:
        deadline = time.monotonic() + 120
        while not (state := client.request("GET", "/api/console/caches"))["warm"]:
            assert time.monotonic() < deadline, "the engine never warmed the console's figures"
            time.sleep(0.2)
    assert state["warmed_at"]


def test_the_fleet_shows_a_change_at_once_even_one_stamped_earlier(running_engine: RunningEngine) -> None:
    store = running_engine.engine.store
    with EngineClient(running_engine.url, running_engine.operator) as client:
        before = fleet_by_name(client)
        name = next(n for n, app in before.items() if app["status"] == "active")
        # A change committed late carries its transaction's start time, older than the newest update.
        store.execute(
            "UPDATE deployed_apps SET status = 'suspended',"
            " updated_at = (SELECT min(updated_at) FROM deployed_apps) - INTERVAL 1 DAY WHERE name = ?",
            [name],
        )
        try:
            assert fleet_by_name(client)[name]["status"] == "suspended"
        finally:
            store.execute(
                "UPDATE deployed_apps SET status = 'active', updated_at = now() WHERE name = ?", [name]
            )
        assert fleet_by_name(client)[name]["status"] == "active"
