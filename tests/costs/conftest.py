from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from engine.store import Store


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def add_app(
    store: Store,
    name: str,
    *,
    user_id: str = "ada",
    tier: str = "starter",
    database_provider: str | None = "local-libsql",
    hosting_provider: str | None = "local",
    status: str = "active",
    custom_domain: str | None = None,
    created_at: datetime = datetime(2026, 1, 1),
) -> str:
    store.execute(
        "INSERT INTO deployed_apps (name, user_id, tier, database_provider, hosting_provider, status, custom_domain,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [name, user_id, tier, database_provider, hosting_provider, status, custom_domain, created_at],
    )
    app_id: Any = store.scalar("SELECT CAST(id AS TEXT) FROM deployed_apps WHERE name = ?", [name])
    return str(app_id)


def subscribe(store: Store, user_id: str, tier: str) -> None:
    store.execute("INSERT INTO user_subscriptions (user_id, tier) VALUES (?, ?)", [user_id, tier])
