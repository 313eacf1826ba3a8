"""Cloud usage adapters against the Turso and Neon emulators, through the real provider clients."""

from __future__ import annotations

from datetime import datetime

from engine.costs.ledger import ingest
from engine.costs.rollup import cost_month
from engine.costs.sources.cloud import NeonUsageSource, TursoUsageSource
from engine.providers.neon import Neon
from engine.providers.turso import Turso
from engine.store import Store
from tests.costs.conftest import add_app
from tests.providers.conftest import neon, neon_emulator, turso, turso_emulator  # noqa: F401

HOUR = datetime(2026, 10, 5, 13)


def test_turso_usage_becomes_a_costed_reading(store: Store, turso: Turso) -> None:  # noqa: F811
    database = turso.create("usage-app")
    app_id = add_app(store, "usage-app", database_provider="turso", hosting_provider=None)
    readings = TursoUsageSource(turso, {app_id: database.name}).collect(HOUR)
    assert [r.provider for r in readings] == ["turso"]
    assert readings[0].metrics["db_rows_read"] == 0 and (readings[0].metrics["db_storage_bytes"] or 0) > 0
    ingest(store, readings)
    usage = cost_month(store, "2026-10").by("app")[0]["usage"]["turso"]
    assert usage["db_storage_bytes_peak"] == readings[0].metrics["db_storage_bytes"]


def test_neon_consumption_becomes_compute_and_storage(store: Store, neon: Neon) -> None:  # noqa: F811
    project, _ = neon.create("usage-app")
    readings = NeonUsageSource(neon, {"app-1": project.id}).collect(HOUR)
    assert len(readings) == 1 and readings[0].provider == "neon"
    assert readings[0].metrics["compute_ms"] == 0
    assert (readings[0].metrics["db_storage_bytes"] or 0) > 1_000_000  # the emulator's real database size
    assert NeonUsageSource(neon, {}).collect(HOUR) == []
