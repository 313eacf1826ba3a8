"""The database path: a generated app's Prisma schema and preview SQLite data, to production.

- ``transform_schema``: the schema for PostgreSQL or libSQL (Prisma 7 driver adapters).
- ``ddl_for_schema``: the DDL Prisma's own schema engine produces.
- ``import_preview``: stream the preview rows into the target, converted, verified and baselined.
"""

from engine.dbpath.ddl import ddl_for_schema
from engine.dbpath.importer import ImportReport, Rejection, TableReport, import_preview
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
