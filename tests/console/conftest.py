"""A real engine in this process on a free port, with a small demo fleet, and tokens for each role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.auth import issue_token
from engine.config import Settings
from engine.demo import seed_demo
from engine.service import Engine
from tests.servers.asgi import free_port

# Small enough to seed in a second or two; 40 days so the usage spans two calendar months.
DEMO_APPS = 60
DEMO_DAYS = 40


@dataclass
class RunningEngine:
    engine: Engine
    url: str
    operator: str
    finance: str
    expired: str
    platform: str


@pytest.fixture(scope="session")
def running_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    workspace: Path = tmp_path_factory.mktemp("console-workspace")
    settings = Settings(
        workspace=workspace, edge_port=free_port(), extra_pipelines="tests.console.steps_pipeline"
    )
    engine = Engine(settings)
    seed_demo(engine.store, apps=DEMO_APPS, days=DEMO_DAYS)
    store = engine.store
    tokens = RunningEngine(
        engine=engine,
        url="",
        operator=issue_token(store, role="operator", principal="ops", name="console test operator"),
        finance=issue_token(store, role="finance", principal="fin", name="console test finance"),
        expired=issue_token(store, role="operator", principal="old", name="expired",
                            expires_at=datetime.now(UTC) - timedelta(days=1)),
        platform=issue_token(store, role="platform", principal="builder", name="platform"),
    )  # fmt: skip
    try:
        tokens.url = engine.start_in_thread()
        yield tokens
    finally:
        engine.stop_thread()


@pytest.fixture
def engine_url(running_engine: RunningEngine, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the console (run in this process by AppTest) at the test engine."""
    monkeypatch.setenv("LAUNCHDECK_ENGINE_URL", running_engine.url)
    return running_engine.url
