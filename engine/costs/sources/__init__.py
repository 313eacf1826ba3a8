"""Local usage sources: what the engine can measure on this machine, for real."""

from engine.costs.sources.edge import EdgeResourceSource, EdgeTrafficSource
from engine.costs.sources.postgres import PostgresUsageSource
from engine.costs.sources.sqlite_files import SqliteFileUsageSource

__all__ = ["EdgeResourceSource", "EdgeTrafficSource", "PostgresUsageSource", "SqliteFileUsageSource"]
