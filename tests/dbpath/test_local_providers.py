"""Local database providers: a PostgreSQL database + role per app, a libSQL file per app."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from engine.errors import Conflict
from engine.providers.base import DatabaseProvider
from engine.providers.local_libsql import LocalLibsql
from engine.providers.local_postgres import LocalPostgres, identifier_for


@pytest.fixture
def apps() -> Iterator[tuple[LocalPostgres, str, str]]:
    provider = LocalPostgres()
    suffix = secrets.token_hex(3)
    a, b = f"test-a-{suffix}", f"test-b-{suffix}"
    try:
        yield provider, a, b
    finally:
        provider.destroy(a)
        provider.destroy(b)


def test_app_credentials_cannot_read_another_apps_database(apps: tuple[LocalPostgres, str, str]) -> None:
    provider, a, b = apps
    assert isinstance(provider, DatabaseProvider)
    handle_a, handle_b = provider.provision(a), provider.provision(b)
    with psycopg.connect(handle_b.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE secrets (v text)")
        conn.execute("INSERT INTO secrets VALUES ('b only')")

    b_database = identifier_for(b)
    a_on_b = handle_a.url.rsplit("/", 1)[0] + f"/{b_database}"
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(a_on_b)
    with psycopg.connect(handle_b.url) as conn:
        assert conn.execute("SELECT v FROM secrets").fetchall() == [("b only",)]
    with psycopg.connect(provider.admin_url) as admin:
        privileges = admin.execute(
            "SELECT has_database_privilege('public', %s, 'CONNECT'),"
            " has_database_privilege(%s, %s, 'CONNECT'), r.rolsuper, r.rolcreatedb, r.rolcreaterole"
            " FROM pg_roles r WHERE r.rolname = %s",
            (b_database, identifier_for(a), b_database, identifier_for(a)),
        ).fetchone()
    assert privileges == (False, False, False, False, False)


def test_provision_is_idempotent_and_suspend_resume_keep_data(apps: tuple[LocalPostgres, str, str]) -> None:
    provider, a, _ = apps
    first = provider.provision(a)
    with psycopg.connect(first.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (1)")
    again = provider.provision(a)  # a re-run after a crash adopts the same database
    assert again.id == first.id and provider.exists(a)
    session = psycopg.connect(again.url, autocommit=True)

    provider.suspend(a)
    assert provider.is_suspended(a)
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")  # open sessions were ended
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        psycopg.connect(again.url)

    provider.resume(a)
    with psycopg.connect(again.url) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [(1,)]
    provider.destroy(a)
    provider.destroy(a)  # already gone is fine
    assert not provider.exists(a) and provider.find(a) is None


def test_odd_app_names_get_safe_distinct_identifiers() -> None:
    assert identifier_for("shop") == "ld_app_shop"
    odd = identifier_for('Bob\'s "Shop"')
    assert odd.startswith("ld_app_bob_s__shop__") and odd != identifier_for("bob_s__shop_")
    assert len(identifier_for("x" * 200)) <= 63


def test_libsql_file_per_app_survives_suspend_and_resume(tmp_path: Path) -> None:
    provider = LocalLibsql(tmp_path)
    assert isinstance(provider, DatabaseProvider)
    handle = provider.provision("shop")
    path = Path(handle.url.removeprefix("file:"))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (v)")
        conn.execute("INSERT INTO t VALUES ('kept')")
    conn.close()
    assert provider.provision("shop").url == handle.url

    provider.suspend("shop")
    assert not path.exists() and provider.is_suspended("shop") and provider.exists("shop")
    provider.resume("shop")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [("kept",)]
    conn.close()

    provider.suspend("shop")
    sqlite3.connect(path).close()  # the app recreated an empty file while suspended
    path.write_bytes(b"")
    with pytest.raises(Conflict, match="created while shop was suspended"):
        provider.resume("shop")
    path.unlink()
    provider.destroy("shop")
    assert not provider.exists("shop")
