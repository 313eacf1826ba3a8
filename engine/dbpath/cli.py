"""``launchdeck db``: transform a Prisma schema, print Prisma's DDL, import preview data.

Mounted by the main CLI through ``engine/cli/db.py``; ``python -m engine.dbpath`` runs the same commands
without loading the rest of the CLI (what the benchmark measures).

Exit codes: 0 done (for ``import``: every row imported and verified); 1 the import ran but did not
verify or rejected values (nothing was committed); 2 bad input (schema, source, target, flags) or a
non-empty target without ``--replace``; 3 the target was unreachable or failed in a way worth retrying.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from engine.errors import ConfigError, Conflict, InputError, LaunchdeckError, TransientError

EXIT_OK, EXIT_NOT_VERIFIED, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3

app = typer.Typer(
    help="The database path: Prisma schema transform, DDL, verified preview-data import.",
    no_args_is_help=True,
)


class Target(StrEnum):
    postgresql = "postgresql"
    libsql = "libsql"


class Dialect(StrEnum):
    postgresql = "postgresql"
    sqlite = "sqlite"


SchemaOption = Annotated[Path, typer.Option("--schema", help="The app's prisma/schema.prisma.")]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _exit_code(exc: LaunchdeckError) -> int:
    if isinstance(exc, InputError | Conflict | ConfigError):
        return EXIT_BAD_INPUT
    if isinstance(exc, TransientError):
        return EXIT_UNAVAILABLE
    return EXIT_NOT_VERIFIED


def _read(schema: Path) -> str:
    try:
        return schema.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read the Prisma schema {schema}: {exc.strerror}", EXIT_BAD_INPUT)


@app.command()
def transform(
    schema: SchemaOption,
    to: Annotated[Target, typer.Option("--to", help="postgresql (Neon, your own) or libsql (Turso).")],
    validate: Annotated[bool, typer.Option(help="Check the result with the Prisma CLI.")] = True,
) -> None:
    """Print the schema transformed for the target, validated by Prisma."""
    from engine.dbpath import node
    from engine.dbpath.transform import transform_schema

    try:
        text = transform_schema(_read(schema), to.value)
        if validate:
            with tempfile.TemporaryDirectory() as scratch:
                path = Path(scratch) / "schema.prisma"
                path.write_text(text)
                node.validate_schema(path)
    except LaunchdeckError as exc:
        _fail(str(exc), _exit_code(exc))
    sys.stdout.write(text)


@app.command()
def ddl(
    schema: SchemaOption,
    dialect: Annotated[Dialect, typer.Option("--dialect", help="postgresql or sqlite.")],
    url: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL server to ask for its version (default: a scratch database on the local one)."
        ),
    ] = None,
) -> None:
    """Print the DDL Prisma's schema engine produces for the schema (a diff from empty)."""
    from engine.dbpath.ddl import ddl_for_schema

    try:
        sys.stdout.write(ddl_for_schema(_read(schema), dialect.value, url=url))
    except LaunchdeckError as exc:
        _fail(str(exc), _exit_code(exc))


class _ProgressLine:
    """At most one progress line per second on stderr, so a terminal shows the load moving."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, done: int, total: int, table: str) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0 or done == total:
            self.last = now
            share = 100.0 * done / total if total else 100.0
            typer.echo(f"  {done:,}/{total:,} rows ({share:.0f}%) - {table}", err=True)


def _start_prisma_early(schema: Path, target: str) -> None:
    """Start Prisma's engines on the import's request before the importer's modules load (0.2 s of
    imports Node works through). Any problem is left for the import to report."""
    from engine.dbpath import node
    from engine.dbpath.targets import target_dialect
    from engine.dbpath.transform import schema_for_dialect

    with contextlib.suppress(LaunchdeckError, OSError, UnicodeDecodeError):
        dialect = target_dialect(target)
        text = schema_for_dialect(schema.read_text(encoding="utf-8"), dialect)
        url = target if dialect == "postgresql" else None
        node.start_early(node.ddl_request(text, dialect, url=url, with_dmmf=True))


@app.command("import")
def import_(
    schema: SchemaOption,
    source: Annotated[
        Path, typer.Option("--from", help="The preview: a SQLite file or a `sqlite3 .dump` text.")
    ],
    target: Annotated[
        str, typer.Option("--to", help="postgresql://..., file:PATH, or libsql://...?authToken=... (Turso).")
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite a target that already holds tables.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (the import report).")
    ] = False,
) -> None:
    """Import preview data into the production database: converted, verified, with a migration baseline."""
    started = time.monotonic()
    _start_prisma_early(schema, target)
    from engine.dbpath import node
    from engine.dbpath.importer import ImportReport, import_preview

    try:
        report = import_preview(
            schema, source, target, replace=replace, progress=None if as_json else _ProgressLine()
        )
    except LaunchdeckError as exc:
        if as_json:
            failed = ImportReport(error=str(exc), seconds=round(time.monotonic() - started, 3))
            sys.stdout.write(failed.model_dump_json() + "\n")
            raise typer.Exit(_exit_code(exc)) from None
        _fail(str(exc), _exit_code(exc))
    finally:
        node.stop_early()  # unused when the import failed before it asked Prisma's engines
    if as_json:
        sys.stdout.write(report.model_dump_json() + "\n")
    else:
        for name, table in report.tables.items():
            typer.echo(
                f"{name}: {table.imported_rows:,}/{table.source_rows:,} rows"
                + (f", {table.rejected_rows:,} rejected" if table.rejected_rows else "")
            )
        for rejection in report.rejected:
            typer.echo(
                f"rejected: table {rejection.table}, row {rejection.key}, column {rejection.column}, "
                f"value {rejection.value!r}: {rejection.reason}",
                err=True,
            )
        if report.ok:
            typer.echo(f"verified: row counts and stored values match the source ({report.seconds:.1f} s)")
        else:
            typer.echo(f"error: {report.error or 'not verified'}; the target was left as it was", err=True)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_NOT_VERIFIED)
