"""Verify for an app without a health route: its home page renders and its database answers.

tables = schema_tables(schema_text)                  # the tables the Prisma schema maps to
problem = page_problem(200, html)                    # None, or why the page is not a rendered page
detail = database_round_trip(env, tables)            # "libSQL file: 4/4 tables" or raises
declares_route(server_dir, "/api/health")            # False: the build has no such route (skip asking)
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from engine.dbpath.transform import blocks
from engine.errors import TerminalError, TransientError

_MAP = re.compile(r"@@map\s*\(\s*(?:name\s*:\s*)?\"([^\"]+)\"")
# Next.js's own error pages: the dev overlay never ships, but a production render that threw shows these.
_NEXT_ERROR = re.compile(
    r"Application error: a (?:server|client)-side exception has occurred|"
    r"<h2[^>]*>Internal Server Error\.?</h2>|"
    r"This page could not be found\.|"
    r'id="__next_error__"'
)


_ROUTE_MANIFESTS = ("app-paths-manifest.json", "pages-manifest.json")
_MANIFEST_MAX_BYTES = 4 * 1024 * 1024


def declares_route(server_dir: Path, path: str) -> bool | None:
    """Whether the Next.js build in ``server_dir`` has a route for ``path`` (``/api/health``): True or
    False from its route manifests, None when it cannot tell (no manifests, or a dynamic route could
    answer). Asking an app for a route it lacks can cost more than a 404: a middleware that rewrites
    unknown API paths may answer with an error instead."""
    routes: set[str] = set()
    found = False
    for name in _ROUTE_MANIFESTS:
        manifest = server_dir / ".next" / "server" / name
        if manifest.is_symlink() or not manifest.is_file() or manifest.stat().st_size > _MANIFEST_MAX_BYTES:
            continue
        try:
            keys = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(keys, dict):
            found = True
            # "/(group)/api/health/route" -> "/api/health"; pages keys are paths already
            routes.update(re.sub(r"/\([^/]*\)|/(?:route|page)$", "", key) or "/" for key in keys)
    if not found:
        return None
    if path in routes:
        return True
    if any("[" in route and path.startswith(route.split("[")[0]) for route in routes):
        return None
    return False


def schema_tables(schema_text: str) -> list[str]:
    """The table names of the schema's models (``@@map`` honoured)."""
    tables = []
    for model in (b for b in blocks(schema_text) if b.kind == "model"):
        mapped = _MAP.search(schema_text, model.body_start, model.end)
        tables.append(mapped.group(1) if mapped else model.name)
    return tables


def page_problem(status_code: int, body: str) -> str | None:
    """Why GET / is not a working page, or None. A redirect or a 4xx (a login wall) counts as working."""
    if status_code >= 500:
        return f"GET / answered {status_code}: {body[:300]}"
    if status_code == 200 and _NEXT_ERROR.search(body) and "This page could not be found" not in body:
        return f"GET / rendered Next.js's error page: {body[:300]}"
    return None


def database_round_trip(env: dict[str, str], tables: list[str]) -> str:
    """A query with the app's own credentials, and the schema's tables present. Raises TerminalError
    naming the missing tables; TransientError when the database does not answer."""
    url = env.get("DATABASE_URL") or ""
    if url.startswith("file:"):
        path = Path(url.removeprefix("file:").split("?")[0])
        if not path.is_file():
            raise TerminalError(f"the app's database file {path} does not exist")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as conn:
                conn.execute("SELECT 1").fetchone()
                present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error as exc:
            raise TransientError(f"the app's libSQL file did not answer: {exc}") from None
        kind = "libSQL file"
    elif url.startswith(("postgres://", "postgresql://")):
        import psycopg

        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                conn.execute("SELECT 1").fetchone()
                rows = conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                ).fetchall()
        except psycopg.OperationalError as exc:
            raise TransientError(f"the app's PostgreSQL database did not answer: {exc}") from None
        present = {r[0] for r in rows}
        kind = "PostgreSQL"
    else:
        return "database: remote libSQL, not checked from here"
    missing = [t for t in tables if t not in present]
    if missing:
        raise TerminalError(
            f"the app's {kind} database lacks the schema's tables {', '.join(missing)}: "
            "the import did not create them"
        )
    return f"database: {kind} answered with the app's credentials, {len(tables)}/{len(tables)} schema tables"
