"""Shared fixtures for the database path: the fidelity schema, a scratch PostgreSQL database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from engine.config import settings
from engine.dbpath.ddl import make_conninfo_url

HERE = Path(__file__).resolve().parent
FIDELITY_SCHEMA = HERE / "fixtures" / "fidelity.prisma"
SHOP_SCHEMA = HERE.parent.parent / "data" / "examples" / "shop" / "prisma" / "schema.prisma"


@pytest.fixture
def fidelity_schema() -> str:
    return FIDELITY_SCHEMA.read_text()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty database on the local server, dropped afterwards whatever the outcome."""
    admin_url = settings().postgres_admin_url
    name = f"ld_test_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo_url(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
