"""M2(a): a database whose import a crash interrupted is imported again on resume, never kept empty."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

from engine.apps import get_app, get_or_create_app
from engine.config import Settings
from engine.service import Engine
from pipelines.web import DB_IMPORTING, DB_URL, provision_database

SHOP = Path(__file__).resolve().parents[2] / "data" / "examples" / "shop"


def test_an_interrupted_import_is_redone(tmp_path: Path) -> None:
    engine = Engine(Settings(workspace=tmp_path / "workspace", edge_port=0))
    try:
        app = get_or_create_app(engine.store, "shop", owner="operator")

        def ctx() -> SimpleNamespace:
            return SimpleNamespace(
                services=engine,
                params={"db": "local-libsql", "source_path": str(SHOP)},
                app=get_app(engine.store, app.id),  # as the step finds it now
                app_id=app.id,
                app_name="shop",
                state={},
                deployment_id="d1",
                progress=lambda *args: None,
            )

        first = provision_database(ctx())  # type: ignore[arg-type]
        assert "rows transferred" in first
        assert engine.vault.get_optional(app.id, DB_IMPORTING) is None
        # A crash during the import: the URL and the app row were recorded, the data was not.
        engine.vault.put(app.id, DB_IMPORTING, "d1")
        path = Path(engine.vault.get(app.id, DB_URL).removeprefix("file:"))
        with sqlite3.connect(path) as connection:
            tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                connection.execute(f'DELETE FROM "{table}"')
        resumed = provision_database(ctx())  # type: ignore[arg-type]
        assert "kept" not in resumed and "rows transferred" in resumed
        assert engine.vault.get_optional(app.id, DB_IMPORTING) is None
    finally:
        engine.store.close()
