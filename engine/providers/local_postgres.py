"""Local ``DatabaseProvider``: one PostgreSQL database and one role per app on a configured server.

The role has a random password, owns only its database and nothing else (no superuser, no CREATEDB,
no CREATEROLE), and CONNECT on the database is revoked from PUBLIC, so no other app's role can open it.
Every operation is idempotent by name: a re-run finds the database and role a crashed run created.

Suspending turns the role's LOGIN off and ends its sessions; resuming turns it back on. Nothing is lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from engine.config import settings
from engine.errors import InputError, ProviderUnavailable
from engine.providers.base import DatabaseHandle

PREFIX = "ld_app_"
MAX_IDENTIFIER = 63


def identifier_for(app_name: str) -> str:
    """``ld_app_<name>``: lower-case letters, digits and ``_``; a hash suffix keeps odd names distinct."""
    if not app_name or not app_name.strip():
        raise InputError("an app name is needed to provision its database")
    clean = re.sub(r"[^a-z0-9_]", "_", app_name.lower())
    if clean == app_name and len(PREFIX + clean) <= MAX_IDENTIFIER:
        return PREFIX + clean
    digest = hashlib.sha256(app_name.encode()).hexdigest()[:8]
    return f"{PREFIX}{clean[: MAX_IDENTIFIER - len(PREFIX) - 9]}_{digest}"


class LocalPostgres:
    """``DatabaseProvider`` over the server at ``settings().postgres_admin_url`` (a superuser URL)."""

    name = "local-postgres"

    def __init__(self, admin_url: str | None = None) -> None:
        self.admin_url = admin_url or settings().postgres_admin_url
        params = conninfo_to_dict(self.admin_url)
        self.host = str(params.get("host") or "127.0.0.1")
        self.port = str(params.get("port") or "5432")

    def _admin(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise ProviderUnavailable(self.name, f"cannot reach the PostgreSQL server: {exc}") from None

    def url_for(self, app_name: str, password: str) -> str:
        ident = identifier_for(app_name)
        return f"postgresql://{ident}:{password}@{self.host}:{self.port}/{ident}"

    # -- DatabaseProvider ----------------------------------------------------------------------
    def provision(self, name: str) -> DatabaseHandle:
        """Create (or adopt) the database and its role; the role gets a fresh random password."""
        ident = identifier_for(name)
        password = secrets.token_urlsafe(24)
        role, database = sql.Identifier(ident), sql.Identifier(ident)
        with self._admin() as admin:
            if self._role_exists(admin, ident):
                admin.execute(
                    sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(role, sql.Literal(password))
                )
            else:
                try:
                    admin.execute(
                        sql.SQL(
                            "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                        ).format(role, sql.Literal(password))
                    )
                except psycopg.errors.DuplicateObject:  # a concurrent run created it: adopt
                    admin.execute(
                        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(role, sql.Literal(password))
                    )
            if not self._database_exists(admin, ident):
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent run made it
                    admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
            admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, role))
            admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        return DatabaseHandle(provider=self.name, name=name, id=ident, url=self.url_for(name, password))

    def find(self, name: str) -> DatabaseHandle | None:
        ident = identifier_for(name)
        with self._admin() as admin:
            if not self._database_exists(admin, ident):
                return None
        return DatabaseHandle(provider=self.name, name=name, id=ident, url="")

    def exists(self, name: str) -> bool:
        return self.find(name) is not None

    def suspend(self, name: str) -> None:
        ident = identifier_for(name)
        with self._admin() as admin:
            if self._role_exists(admin, ident):
                admin.execute(sql.SQL("ALTER ROLE {} WITH NOLOGIN").format(sql.Identifier(ident)))
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (ident,)
                )

    def resume(self, name: str) -> None:
        ident = identifier_for(name)
        with self._admin() as admin:
            if self._role_exists(admin, ident):
                admin.execute(sql.SQL("ALTER ROLE {} WITH LOGIN").format(sql.Identifier(ident)))

    def destroy(self, name: str) -> None:
        ident = identifier_for(name)
        with self._admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(ident)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(ident)))

    def is_suspended(self, name: str) -> bool:
        ident = identifier_for(name)
        with self._admin() as admin:
            row = admin.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (ident,)).fetchone()
        return row is not None and not row[0]

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _role_exists(admin: psycopg.Connection, ident: str) -> bool:
        return admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ident,)).fetchone() is not None

    @staticmethod
    def _database_exists(admin: psycopg.Connection, ident: str) -> bool:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (ident,)).fetchone() is not None
