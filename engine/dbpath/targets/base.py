"""The protocol every import target implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol

from engine.dbpath.schema import Table
from engine.errors import LaunchdeckError

Row = tuple[Any, ...]
Dialect = Literal["postgresql", "sqlite"]


class Target(Protocol):
    dialect: Dialect
    description: str  # for messages: no password, no token

    def is_empty(self) -> bool:
        """True when the target holds no user table."""
        ...

    def begin(self, *, replace: bool) -> None:
        """Start the one transaction of the import; with ``replace`` drop what the target held."""
        ...

    def execute(self, statements: Sequence[str]) -> None: ...

    def load(self, table: Table, rows: Sequence[Row]) -> None:
        """Append converted rows (in ``table.columns`` order) to a table."""
        ...

    def read(self, table: Table) -> Iterator[Sequence[Row]]:
        """The stored rows in batches, for verification (inside the same transaction)."""
        ...

    def after_load(self, table: Table) -> None:
        """Per-table work once rows and keys are in (PostgreSQL: move sequences past the ids)."""
        ...

    def foreign_key_violations(self) -> list[tuple[str, int, str]]:
        """(table, rowid, referenced table) for rows whose relation points nowhere (SQLite targets)."""
        ...

    def record_baseline(self, migration_name: str, checksum: str, run_id: str) -> None:
        """Create ``_prisma_migrations`` with the row (id ``run_id``) that marks the baseline applied."""
        ...

    def translate_error(self, exc: Exception) -> LaunchdeckError | None:
        """The driver's error as one of ours (transient or terminal), or None when it is not the driver's."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...
