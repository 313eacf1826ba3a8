"""A real pipeline runner (on the test run's Temporal dev server) over a real DuckDB store and vault, for
the mobile and desktop tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.apps import get_or_create_app
from engine.config import Settings
from engine.runner import PipelineFactory
from engine.store import Store
from engine.temporal.runner import TemporalRunner
from engine.vault import Vault

REPO = Path(__file__).resolve().parents[2]
SPECS = Path("/work/shared/specs")


def require_tools(folder: str, package: str) -> None:
    if not (REPO / folder / "node_modules" / package).is_dir():
        pytest.skip(f"{package} is not installed: run `npm ci` in {folder} (`make setup` does)")


@dataclass
class Harness:
    runner: TemporalRunner
    vault: Vault
    settings: Settings
    app_id: str
    owner: str

    @property
    def store(self) -> Store:
        return self.runner.store

    def run(self, pipeline: str, params: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        deployment_id = self.runner.submit(self.app_id, pipeline, params, requested_by="test", lock_timeout=0)
        row = self.runner.wait(deployment_id, timeout=timeout)
        assert row["status"] in ("succeeded", "failed", "cancelled"), f"still {row['status']}"
        row["state"] = json.loads(row["state"] or "{}")
        row["steps"] = {
            r["name"]: r["status"]
            for r in self.store.fetchall(
                "SELECT name, status FROM step_runs WHERE deployment_id = ? ORDER BY position",
                [deployment_id],
            )
        }
        row["log"] = [
            r["line"]
            for r in self.store.fetchall(
                "SELECT line FROM deployment_log WHERE deployment_id = ? ORDER BY id", [deployment_id]
            )
        ]
        return row


@contextmanager
def harness(
    tmp_path: Path, pipelines: dict[str, PipelineFactory], temporal: str, **urls: Any
) -> Iterator[Harness]:
    """``temporal``: the address of the Temporal server the runner uses (the ``shared_temporal`` fixture)."""
    store = Store(tmp_path / "store.duckdb")
    vault = Vault(store, key_file=tmp_path / "vault.key")
    settings = Settings(
        workspace=tmp_path / "workspace", build_poll_seconds=0.01, temporal_address=temporal, **urls
    )
    services = SimpleNamespace(settings=settings, vault=vault)
    runner = TemporalRunner(store, pipelines, settings=settings, services=services)
    app = get_or_create_app(store, "demo", owner="alice")
    try:
        yield Harness(runner, vault, settings, app.id, "alice")
    finally:
        runner.shutdown()
        store.close()
