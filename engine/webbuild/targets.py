"""Deployment targets as the web build sees them: which driver adapter and which SQL dialect."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InputError
from engine.rules import DATABASE_FAMILIES
from engine.rules import DatabaseFamily as Family


@dataclass(frozen=True)
class Target:
    name: str
    family: Family

    @property
    def prisma_provider(self) -> str:
        return "sqlite" if self.family == "libsql" else "postgresql"

    @property
    def adapter_package(self) -> str:
        return "@prisma/adapter-libsql" if self.family == "libsql" else "@prisma/adapter-pg"

    @property
    def sqlglot_dialect(self) -> str:
        return "sqlite" if self.family == "libsql" else "postgres"


_FAMILIES: dict[str, Family] = {
    **{str(kind): family for kind, family in DATABASE_FAMILIES.items()},
    "libsql": "libsql",
    "sqlite": "libsql",
    "postgres": "postgresql",
    "postgresql": "postgresql",
}


def parse_target(target: str | Target) -> Target:
    """Accepts a database kind (`local-libsql`, `turso`, `local-postgres`, `neon`) or a dialect name."""
    if isinstance(target, Target):
        return target
    family = _FAMILIES.get(target.strip().lower())
    if family is None:
        raise InputError(
            f"unknown deployment target {target!r}: use one of local-libsql, turso, local-postgres, neon "
            "(for a bring-your-own database pass libsql or postgresql, after its URL's scheme)"
        )
    return Target(name=target.strip().lower(), family=family)
