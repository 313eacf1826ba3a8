"""Choosing a provider by name, from the engine's settings, the way the deploy pipeline does."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.config import Settings
from engine.errors import ConfigError, InputError
from pipelines.providers import database_provider, hosting_provider


def engine_with(tmp_path: Path, **settings: Any) -> Any:
    return SimpleNamespace(settings=Settings(workspace=tmp_path, **settings))


def test_unknown_names_say_what_to_choose(tmp_path: Path) -> None:
    engine = engine_with(tmp_path)
    with pytest.raises(InputError, match=r"use one of turso, neon, byo, local-libsql, local-postgres\Z"):
        database_provider(engine, "mongo", "app")
    with pytest.raises(InputError, match=r"use one of cloudflare, vercel, local\Z"):
        hosting_provider(engine, "netlify")


@pytest.mark.parametrize(
    ("kind", "needed"),
    [("vercel", "VERCEL_TOKEN"), ("cloudflare", "CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN")],
)
def test_a_host_without_credentials_names_the_settings_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, needed: str
) -> None:
    for name in ("VERCEL_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=needed):
        hosting_provider(engine_with(tmp_path), kind)


@pytest.mark.parametrize(
    ("kind", "needed"), [("turso", "TURSO_ORG_ID and TURSO_API_TOKEN"), ("neon", "NEON_API_KEY")]
)
def test_a_database_without_credentials_names_the_settings_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, needed: str
) -> None:
    for name in ("TURSO_ORG_ID", "TURSO_API_TOKEN", "NEON_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=needed):
        database_provider(engine_with(tmp_path), kind, "app")
