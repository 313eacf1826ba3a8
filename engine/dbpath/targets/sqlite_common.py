"""What the SQLite-family targets (a local file, Turso over Hrana) share: SQL text and row decoding."""

from __future__ import annotations

from engine.dbpath.schema import Table
from engine.dbpath.sql import column_list, quote

# SQLite's default limit on bound parameters (SQLITE_MAX_VARIABLE_NUMBER) since 3.32.
MAX_PARAMETERS = 32_766

PRISMA_MIGRATIONS_DDL = (
    'CREATE TABLE IF NOT EXISTS "_prisma_migrations" ('
    ' "id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,'
    ' "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME,'
    ' "started_at" DATETIME NOT NULL DEFAULT current_timestamp,'
    ' "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)'
)
PRISMA_MIGRATIONS_INSERT = (
    'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at,'
    " applied_steps_count) VALUES (?, ?, ?, ?, ?, 1)"
)
USER_OBJECTS = (
    "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    " AND type IN ('table', 'view', 'trigger') ORDER BY type = 'table'"
)


def insert_sql(table: Table, rows: int = 1) -> str:
    marks = "(" + ", ".join("?" for _ in table.columns) + ")"
    return (
        f"INSERT INTO {quote(table.name)} ({column_list([c.name for c in table.columns])}) VALUES "
        + ", ".join([marks] * rows)
    )


def select_sql(table: Table) -> str:
    return f"SELECT {column_list([c.name for c in table.columns])} FROM {quote(table.name)}"


def drop_sql(kind: str, name: str) -> str:
    return f"DROP {kind.upper()} IF EXISTS {quote(name)}"
