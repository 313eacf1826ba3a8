"""DDL comes from Prisma's schema engine and matches what Prisma printed for the same schema."""

from __future__ import annotations

import psycopg
import pytest

from engine.dbpath.ddl import ddl_for_schema, load_plan
from tests.dbpath.conftest import HERE


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_ddl_matches_prisma_expectation(fidelity_schema: str, dialect: str) -> None:
    expected = (HERE / "expected" / f"fidelity.{dialect}.sql").read_text()
    assert ddl_for_schema(fidelity_schema, dialect) == expected


def test_postgresql_ddl_runs_and_load_plan_gives_the_same_schema(
    fidelity_schema: str, pg_database: str
) -> None:
    ddl = ddl_for_schema(fidelity_schema, "postgresql", url=pg_database)
    plan = load_plan(ddl, "postgresql")
    assert not any("PRIMARY KEY" in s for s in plan.before)
    with psycopg.connect(pg_database, autocommit=True) as conn:
        for statement in plan.before + plan.after:
            conn.execute(statement.encode())
        keys = conn.execute(
            "SELECT conname, contype FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
    assert ("accounts_pkey", "p") in keys
    assert ("memberships_pkey", "p") in keys
    assert ("accounts_manager_id_fkey", "f") in keys
    assert ("_AccountToTag_AB_pkey", "p") in keys
