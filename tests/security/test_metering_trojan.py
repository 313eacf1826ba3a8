"""H5: hourly metering enters each app's database as a superuser; the app's role owns that database and
plants functions and operators ahead of pg_catalog in its search_path. None of them may run."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from engine.costs.sources.postgres import PostgresUsageSource
from engine.providers.local_postgres import LocalPostgres

TROJANS = """
CREATE TABLE public.trojan_ran (who text);
GRANT INSERT ON public.trojan_ran TO PUBLIC;
CREATE SCHEMA evil;
CREATE FUNCTION evil.pg_database_size(name) RETURNS bigint LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.trojan_ran VALUES (current_user); RETURN 0; END$$;
CREATE FUNCTION evil.add(bigint, bigint) RETURNS bigint LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.trojan_ran VALUES (current_user); RETURN $1 OPERATOR(pg_catalog.+) $2; END$$;
CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.add);
CREATE TABLE public.t (x int);
INSERT INTO public.t VALUES (1);
"""


@pytest.fixture
def app_database(pg_admin_url: str) -> Iterator[tuple[str, str]]:
    name = f"sec-meter-{secrets.token_hex(3)}"
    provider = LocalPostgres(pg_admin_url)
    handle = provider.provision(name)
    try:
        yield handle.url, handle.id
    finally:
        provider.destroy(name)


def test_metering_runs_nothing_the_app_planted(app_database: tuple[str, str], pg_admin_url: str) -> None:
    url, database = app_database
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(TROJANS)
        owner.execute(f'ALTER DATABASE "{database}" SET search_path = evil, pg_catalog, public')
        owner.execute("SELECT * FROM public.t")  # some reads for the statistics
    readings = PostgresUsageSource(pg_admin_url, {"app": database}).collect(datetime(2026, 12, 7, tzinfo=UTC))
    assert readings and (readings[0].metrics["db_storage_bytes"] or 0) > 0
    with psycopg.connect(url) as owner:
        ran = owner.execute("SELECT who FROM public.trojan_ran").fetchall()
    assert ran == []
    with psycopg.connect(pg_admin_url) as admin:  # it read as a role without a superuser's rights
        role = admin.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, has_database_privilege(rolname, %s, 'CONNECT')"
            " FROM pg_roles WHERE rolname = 'launchdeck_metering'",
            [database],
        ).fetchone()
    assert role == (False, False, False, True)
