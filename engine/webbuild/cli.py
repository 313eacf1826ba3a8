"""``launchdeck preflight APP_DIR --db TARGET``: what would stop a deploy, before anything is created.

Mount in engine/cli/__init__.py with
``app.command("preflight")(engine.webbuild.cli.preflight_command)``. It only reads the app folder, so it
needs no running engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from engine.errors import InputError
from engine.rules import DATABASE_FAMILIES, DEFAULT_DATABASE
from engine.webbuild.preflight import blocking, preflight


def preflight_command(
    app_dir: Annotated[Path, typer.Argument(help="the generated app's folder")],
    db: Annotated[str, typer.Option("--db", help=", ".join(DATABASE_FAMILIES))] = DEFAULT_DATABASE,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check an app for a deploy to --db: Prisma version, raw SQL, build-time database and network use.

    Exit code 1 when a finding blocks the deploy.
    """
    try:
        findings = preflight(app_dir, db)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps([finding.as_dict() for finding in findings], indent=2))
    elif not findings:
        typer.echo(f"{app_dir}: nothing in the way of a deploy to {db}")
    else:
        for finding in findings:
            typer.echo(str(finding))
    if blocking(findings):
        raise typer.Exit(1)
