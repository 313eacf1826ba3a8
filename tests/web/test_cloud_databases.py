"""The database stage of a deployment against the Turso and Neon emulators: provision, import the
preview, undo on failure (no orphaned paid resource), and adopt after a crash instead of creating twice.
No Node build is involved: these run the engine's `database` pipeline (POST /api/deploy/database)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from engine.client import EngineClient
from engine.config import Settings
from engine.service import Engine
from tests.emulators.neon import ADMIN_DSN as NEON_SERVER
from tests.emulators.neon import NeonEmulator
from tests.emulators.turso import TursoEmulator
from tests.servers.asgi import serve

SHOP = Path(__file__).resolve().parents[2] / "data" / "examples" / "shop"


Clouds = tuple[TursoEmulator, NeonEmulator, EngineClient, Engine]


@pytest.fixture
def clouds(tmp_path: Path) -> Iterator[Clouds]:
    turso, neon = TursoEmulator(tmp_path / "turso"), NeonEmulator()
    try:
        with serve(turso.app) as turso_url, serve(neon.app) as neon_url:
            settings = Settings(
                workspace=tmp_path / "workspace",
                edge_port=0,
                turso_api_url=turso_url,
                neon_api_url=neon_url + "/api/v2",
                TURSO_ORG_ID=turso.org,
                TURSO_API_TOKEN=turso.api_token,
                NEON_API_KEY=neon.api_key,
            )
            engine = Engine(settings)
            url = engine.start_in_thread()
            client = EngineClient(url, str(engine.first_token))
            try:
                yield turso, neon, client, engine
            finally:
                client.close()
                engine.stop_thread()
    finally:
        turso.close()
        neon.drop_all()


def provision(client: EngineClient, db: str, preview: Path, app: str = "shop") -> dict[str, Any]:
    started = client.request(
        "POST",
        "/api/deploy/database",
        json={
            "app": app,
            "schema_path": str(SHOP / "prisma" / "schema.prisma"),
            "db": db,
            "preview": str(preview),
        },
    )
    return client.wait(started["deployment_id"], timeout=300)


def preview_counts() -> dict[str, int]:
    with sqlite3.connect(SHOP / "preview.sqlite") as source:
        return {
            t: source.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            for t in ("products", "orders", "users")
        }


def test_neon_database_is_provisioned_and_holds_the_preview_rows(clouds: Clouds) -> None:
    _, neon, client, engine = clouds
    status = provision(client, "neon", SHOP / "preview.sqlite")
    assert status["deployment"]["status"] == "succeeded", status
    (project,) = neon.projects.values()
    url = engine.vault.get(str(client.app("shop")["id"]), "db:url")
    with psycopg.connect(url) as connection:  # the app's own credentials, as Prisma will use them
        counts = {
            t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in preview_counts()
        }
    assert counts == preview_counts()
    assert client.app("shop")["database_provider"] == "neon"
    assert client.app("shop")["database_id"] == project.id


def test_turso_database_is_provisioned_and_holds_the_preview_rows(clouds: Clouds) -> None:
    turso, _, client, _ = clouds
    status = provision(client, "turso", SHOP / "preview.sqlite")
    assert status["deployment"]["status"] == "succeeded", status
    with sqlite3.connect(turso.path_of("shop")) as target:
        counts = {t: target.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in preview_counts()}
    assert counts == preview_counts()


def emulated_neon_databases(admin_url: str) -> set[str]:
    with psycopg.connect(admin_url) as admin:
        rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'neon\\_%'").fetchall()
    return {name for (name,) in rows}


def test_failed_import_undoes_the_cloud_database_it_created(clouds: Clouds, tmp_path: Path) -> None:
    _, neon, client, _ = clouds
    broken = tmp_path / "broken.sqlite"
    shutil.copy(SHOP / "preview.sqlite", broken)
    with sqlite3.connect(broken) as connection:  # a price that is not a decimal cannot be imported
        connection.execute("UPDATE products SET price = 'twelve dollars' WHERE rowid = 1")

    before = emulated_neon_databases(NEON_SERVER)  # the server is shared: judge only what this run made

    status = provision(client, "neon", broken)

    assert status["deployment"]["status"] == "failed"
    assert "twelve dollars" in str(status["deployment"]["error"])
    assert neon.projects == {}  # deleted again: nothing left to pay for
    assert emulated_neon_databases(NEON_SERVER) == before
    assert client.app("shop")["database_provider"] is None


def test_database_created_by_a_crashed_run_is_adopted_not_duplicated(clouds: Clouds) -> None:
    turso, _, client, engine = clouds
    from pipelines.providers import using_database

    with using_database(engine, "turso", "shop") as provider:  # a run that died right after creating it
        provider.provision("shop")
    assert turso.creates == 1

    status = provision(client, "turso", SHOP / "preview.sqlite")

    assert status["deployment"]["status"] == "succeeded", status
    assert turso.creates == 1
    assert list(turso.databases) == ["shop"]


def test_turso_preview_that_cannot_be_imported_creates_no_database(clouds: Clouds, tmp_path: Path) -> None:
    turso, _, client, _ = clouds
    broken = tmp_path / "broken.sqlite"
    shutil.copy(SHOP / "preview.sqlite", broken)
    with sqlite3.connect(broken) as connection:
        connection.execute("UPDATE products SET price = 'twelve dollars' WHERE rowid = 1")

    status = provision(client, "turso", broken)

    assert status["deployment"]["status"] == "failed"
    # The import runs into a local file first; the database is created (and seeded by upload) only after.
    assert turso.creates == 0 and turso.databases == {}
