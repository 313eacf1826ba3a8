"""The database path: a generated app's Prisma schema and preview SQLite data, to production.

- ``transform_schema``: the schema for PostgreSQL or libSQL (Prisma 7 driver adapters).
- ``ddl_for_schema``: the DDL Prisma's own schema engine produces.
- ``import_preview``: stream the preview rows into the target, converted, verified and baselined.

The names load on first use, so a worker process that converts rows imports no database driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.dbpath.batches import Rejection
    from engine.dbpath.ddl import ddl_for_schema
    from engine.dbpath.importer import ImportReport, TableReport, import_preview
    from engine.dbpath.schema import PrismaSchema, parse_schema
    from engine.dbpath.transform import prisma_config_for, transform_schema

__all__ = [
    "ImportReport",
    "PrismaSchema",
    "Rejection",
    "TableReport",
    "ddl_for_schema",
    "import_preview",
    "parse_schema",
    "prisma_config_for",
    "transform_schema",
]
_HOMES = {
    "ImportReport": "importer",
    "PrismaSchema": "schema",
    "Rejection": "batches",
    "TableReport": "importer",
    "ddl_for_schema": "ddl",
    "import_preview": "importer",
    "parse_schema": "schema",
    "prisma_config_for": "transform",
    "transform_schema": "transform",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
