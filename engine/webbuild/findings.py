"""A preflight finding: where, how bad, and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["blocking", "warning"]


@dataclass(frozen=True)
class Finding:
    file: str  # relative to the app folder, "/"-separated
    line: int | None
    severity: Severity
    code: str  # stable id, e.g. "raw-sql-sqlite-function", for the pipeline and the console
    message: str  # what is wrong and what to do

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"
