"""A real engine (in this process, on a free port, over real HTTP) for the API tests, with small upload
limits so that over-the-limit archives stay small, and helpers for tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.auth import issue_token
from engine.config import Settings
from engine.service import Engine

UPLOAD_LIMIT = 2_000_000
UNPACKED_LIMIT = 5_000_000


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    workspace = tmp_path_factory.mktemp("api") / "workspace"
    service = Engine(
        Settings(
            workspace=workspace,
            edge_port=0,
            extra_pipelines="tests.foundation.selftest_pipeline",
            upload_max_bytes=UPLOAD_LIMIT,
            upload_max_unpacked_bytes=UNPACKED_LIMIT,
            upload_max_files=500,
            rate_limit="100000/minute",
        )
    )
    service.start_in_thread()
    yield service
    service.stop_thread()


@pytest.fixture(scope="module")
def http(engine: Engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=str(engine.url), timeout=60) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def platform_token(engine: Engine, name: str, users: list[str] | None = None) -> dict[str, str]:
    return bearer(issue_token(engine.store, role="platform", principal=name, name=name, users=users))


def operator(engine: Engine) -> dict[str, str]:
    assert engine.first_token
    return bearer(engine.first_token)


def workspace_of(engine: Engine) -> Path:
    return engine.settings.workspace
