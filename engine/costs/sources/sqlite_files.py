"""libSQL/SQLite database files: size on disk. Rows read and written cannot be observed from outside the
process that runs the queries, so they are reported as not measured (None), never as zero."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from engine.costs.usage import Reading


def file_bytes(path: Path) -> int | None:
    """The database's size: the main file plus its write-ahead log, as SQLite keeps both."""
    if not path.exists():
        return None
    total = path.stat().st_size
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        total += wal.stat().st_size
    return total


class SqliteFileUsageSource:
    name = "sqlite-file"

    def __init__(
        self, files: Mapping[str, Path] | Callable[[], Mapping[str, Path]], *, provider: str = "local-libsql"
    ):
        self._files = files
        self.provider = provider

    def collect(self, hour_start: datetime) -> list[Reading]:
        files = self._files() if callable(self._files) else self._files
        return [
            Reading(
                app_id=app_id,
                provider=self.provider,
                source=self.name,
                hour_start=hour_start,
                metrics={
                    "db_storage_bytes": file_bytes(Path(path)),
                    "db_rows_read": None,
                    "db_rows_written": None,
                },
            )
            for app_id, path in sorted(files.items())
        ]
