"""DDL from Prisma's own schema engine (``@prisma/schema-engine-wasm``, a diff from the empty database).

The production database must be exactly what the generated Prisma Client expects, so the SQL is never
hand-written: the engine computes it. For PostgreSQL the engine asks the server its version first, so it
needs a live connection; without one a scratch database is created on the configured server and dropped.

``load_plan`` splits that DDL for a fast load: tables first (for PostgreSQL without their primary keys),
then keys, indexes and foreign keys once the rows are in.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from engine.dbpath import node
from engine.dbpath.schema import PrismaSchema, schema_from_dmmf
from engine.dbpath.transform import datasource_provider, schema_for_dialect
from engine.errors import InputError, TerminalError

Dialect = Literal["postgresql", "sqlite"]
STATEMENT_HEADER = re.compile(r"^-- (\w+)\n", re.MULTILINE)
PRIMARY_KEY = re.compile(r',\s*\n\s*CONSTRAINT "([^"]+)" PRIMARY KEY \(([^)]*)\)')
CREATE_TABLE_NAME = re.compile(r'^CREATE TABLE "([^"]+)"')


@contextmanager
def scratch_database(admin_url: str | None = None) -> Iterator[str]:
    """A throw-away PostgreSQL database on the admin server; dropped whatever happens."""
    if admin_url is None:
        from engine.config import settings  # pydantic-settings costs 60 ms at start; only needed here

        admin_url = settings().postgres_admin_url
    name = f"launchdeck_scratch_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise TerminalError(f"cannot create a scratch database on the PostgreSQL server: {exc}") from None
    try:
        yield make_conninfo_url(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_conninfo_url(url: str, dbname: str) -> str:
    """The same server and credentials as ``url``, another database; as a postgresql:// URL."""
    params = conninfo_to_dict(make_conninfo(url, dbname=dbname))
    user = params.get("user", "postgres")
    password = f":{params['password']}" if params.get("password") else ""
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    return f"postgresql://{user}{password}@{host}:{port}/{dbname}"


def ddl_for_schema(schema_text: str, dialect: Dialect | str, *, url: str | None = None) -> str:
    """What Prisma's schema engine creates for ``schema_text`` on ``dialect``, as one SQL script."""
    target_schema = schema_for_dialect(schema_text, dialect)
    if dialect == "sqlite":
        return str(node.call(node.ddl_request(target_schema, dialect))["sql"])
    if url is not None:
        return str(node.call(node.ddl_request(target_schema, dialect, url=url))["sql"])
    with scratch_database() as scratch:
        return str(node.call(node.ddl_request(target_schema, dialect, url=scratch))["sql"])


def schema_and_ddl(
    schema_text: str,
    dialect: Dialect | str,
    *,
    url: str | None = None,
    on_schema: Callable[[PrismaSchema], None] | None = None,
) -> tuple[PrismaSchema, str]:
    """The parsed schema and its DDL from one run of Prisma's engines (what the importer needs).

    ``on_schema`` gets the parsed schema as soon as Prisma's parser answers, while the schema engine is
    still computing the DDL.
    """
    if dialect == "postgresql" and url is None:
        raise InputError("PostgreSQL DDL needs the server's URL")
    request = node.ddl_request(schema_for_dialect(schema_text, dialect), dialect, url=url, with_dmmf=True)
    provider = datasource_provider(schema_text)
    parsed: list[PrismaSchema] = []

    def seen(answer: dict[str, Any]) -> None:
        if "dmmf" in answer:
            parsed.append(schema_from_dmmf(answer["dmmf"]["datamodel"], provider))
            if on_schema is not None:
                on_schema(parsed[0])

    answers = node.call_lines(request, on_line=seen)
    sql = next((a["sql"] for a in answers if "sql" in a), None)
    if not parsed or sql is None:
        raise TerminalError("Prisma's engine stopped before it gave both the schema and its DDL")
    return parsed[0], str(sql)


@dataclass(frozen=True)
class Statement:
    kind: str  # Prisma's own header: CreateSchema, CreateEnum, CreateTable, CreateIndex, AddForeignKey
    sql: str


def statements(ddl: str) -> list[Statement]:
    """Prisma's script, one statement per ``-- Kind`` header."""
    parts = STATEMENT_HEADER.split(ddl)
    found = []
    for kind, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip()
        if sql:
            found.append(Statement(kind, sql.rstrip(";")))
    return found


@dataclass(frozen=True)
class LoadPlan:
    """``before`` creates bare tables; ``after`` adds keys, indexes and foreign keys once rows are in."""

    before: list[str]
    after: list[str]


def load_plan(ddl: str, dialect: Dialect | str) -> LoadPlan:
    before: list[str] = []
    after: list[str] = []
    for statement in statements(ddl):
        if statement.kind == "CreateTable" and dialect == "postgresql":
            before.append(PRIMARY_KEY.sub("", statement.sql))
            found = PRIMARY_KEY.search(statement.sql)
            table = CREATE_TABLE_NAME.match(statement.sql)
            if found and table:
                columns = [c.strip().strip('"') for c in found.group(2).split(",")]
                after.insert(0, add_primary_key(table.group(1), found.group(1), columns))
        elif statement.kind in ("CreateIndex", "AddForeignKey"):
            after.append(statement.sql)
        else:
            before.append(statement.sql)
    return LoadPlan(before, after)


def add_primary_key(table: str, constraint: str, columns: list[str]) -> str:
    # psycopg's composition (loaded anyway) quotes as PostgreSQL does; no parser needed for one statement.
    return (
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})")
        .format(
            sql.Identifier(table),
            sql.Identifier(constraint),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
        )
        .as_string()
    )
