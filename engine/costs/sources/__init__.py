"""Local usage sources: what the engine can measure on this machine, for real."""

from engine.costs.sources.edge import EdgeTrafficSource
from engine.costs.sources.postgres import PostgresUsageSource
from engine.costs.sources.sqlite_files import SqliteFileUsageSource

__all__ = ["EdgeTrafficSource", "PostgresUsageSource", "SqliteFileUsageSource"]
