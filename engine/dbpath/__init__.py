"""The database path: a generated app's Prisma schema and preview SQLite data, to production.

- ``transform_schema``: the schema for PostgreSQL or libSQL (Prisma 7 driver adapters).
- ``ddl_for_schema``: the DDL Prisma's own schema engine produces.
- ``import_preview``: stream the preview rows into the target, converted, verified and baselined.
"""

from engine.dbpath.ddl import ddl_for_schema
from engine.dbpath.schema import PrismaSchema, parse_schema
from engine.dbpath.transform import transform_schema

__all__ = ["PrismaSchema", "ddl_for_schema", "parse_schema", "transform_schema"]
