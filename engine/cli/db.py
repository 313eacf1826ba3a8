"""``launchdeck db``: the database path's commands (their code lives in ``engine/dbpath/cli.py``).

Mount in engine/cli/__init__.py::

    from engine.cli import db as db_cli
    app.add_typer(db_cli.app, name="db")

Exit codes: 0 done; 1 the import did not verify or rejected values (nothing committed); 2 bad input or a
non-empty target without ``--replace``; 3 the target was unreachable (worth retrying).
"""

from engine.dbpath.cli import EXIT_BAD_INPUT, EXIT_NOT_VERIFIED, EXIT_OK, EXIT_UNAVAILABLE, app

__all__ = ["EXIT_BAD_INPUT", "EXIT_NOT_VERIFIED", "EXIT_OK", "EXIT_UNAVAILABLE", "app"]
