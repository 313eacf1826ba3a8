"""PostgreSQL app databases: rows read and written from the statistics collector, size from
``pg_database_size``.

Rows read = ``seq_tup_read + idx_tup_fetch`` and rows written = ``n_tup_ins + n_tup_upd + n_tup_del`` over the
database's user tables (``pg_stat_user_tables``), the closest match to what Turso and Neon bill as rows read and
written; catalog reads are left out. The statistics are cumulative, so hourly values are deltas
(``CounterDeltas``); a statistics reset counts from zero again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from engine.costs.usage import CounterDeltas, CounterState, Reading
from engine.errors import ProviderUnavailable

# Run inside the app's own database, which its role owns and may fill with functions and operators:
# every name is schema-qualified and the session's search_path is pg_catalog only (set in the startup
# packet, which wins over the database's and the role's defaults), so nothing of the app's runs with
# the metering connection's rights (review H5).
ROW_STATS = """
SELECT coalesce(pg_catalog.sum(seq_tup_read OPERATOR(pg_catalog.+) coalesce(idx_tup_fetch, 0)), 0)::pg_catalog.int8,
       coalesce(pg_catalog.sum(n_tup_ins OPERATOR(pg_catalog.+) n_tup_upd OPERATOR(pg_catalog.+) n_tup_del), 0)::pg_catalog.int8
FROM pg_catalog.pg_stat_user_tables
"""
# Run in the maintenance database (the admin URL's), never inside the app's; as the metering role.
SIZE = (
    "SELECT pg_catalog.pg_database_size(oid) FROM pg_catalog.pg_database "
    "WHERE datname OPERATOR(pg_catalog.=) %s"
)
SAFE_OPTIONS = "-c search_path=pg_catalog"
# Metering reads as this role, never as the superuser of the admin URL: pg_monitor (statistics and sizes
# of every database) and CONNECT on each app database, nothing else. Its password is new each hour.
METERING_ROLE = "launchdeck_metering"


class PostgresUsageSource:
    name = "postgres"

    def __init__(
        self,
        admin_url: str,
        databases: Mapping[str, str] | Callable[[], Mapping[str, str]],
        *,
        provider: str = "local-postgres",
        state: CounterState | None = None,
        connect_timeout: int = 5,
    ) -> None:
        """``databases`` maps app id to database name (or is a callable returning that map)."""
        self.admin_url = admin_url
        self._databases = databases
        self.provider = provider
        self.deltas = CounterDeltas(self.name, state)
        self.connect_timeout = connect_timeout

    def _url_for(self, database: str | None, *, password: str | None = None) -> str:
        """The admin URL's server; as the metering role when ``password`` is given."""
        params = {k: str(v) for k, v in conninfo_to_dict(self.admin_url).items() if v is not None}
        if database is not None:
            params["dbname"] = database
        if password is not None:
            params.update(user=METERING_ROLE, password=password)
        params.setdefault("connect_timeout", str(self.connect_timeout))
        params["options"] = SAFE_OPTIONS
        return make_conninfo("", **params)

    def _metering_role(self, databases: list[str]) -> str:
        """Create or refresh the metering role and its CONNECT grants; returns this hour's password."""
        password = secrets.token_urlsafe(24)
        role = sql.Identifier(METERING_ROLE)
        try:
            with psycopg.connect(self._url_for(None), autocommit=True) as admin:
                exists = admin.execute(
                    "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", [METERING_ROLE]
                )
                verb = "ALTER" if exists.fetchone() else "CREATE"
                admin.execute(
                    sql.SQL(
                        verb + " ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                    ).format(role, sql.Literal(password))
                )
                admin.execute(sql.SQL("GRANT pg_monitor TO {}").format(role))
                present = {
                    row[0]
                    for row in admin.execute(
                        "SELECT datname FROM pg_catalog.pg_database WHERE datname = ANY(%s)", [databases]
                    )
                }
                for database in sorted(present):
                    admin.execute(
                        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role)
                    )
        except psycopg.OperationalError as exc:
            raise ProviderUnavailable("postgres", f"cannot prepare the metering role: {exc}") from exc
        return password

    def _measure(self, database: str, password: str) -> tuple[int, int, int] | None:
        try:
            with psycopg.connect(self._url_for(None, password=password), autocommit=True) as maintenance:
                size = maintenance.execute(SIZE, [database]).fetchone()
            if size is None:
                return None  # the database is gone
            with psycopg.connect(self._url_for(database, password=password), autocommit=True) as conn:
                row = conn.execute(ROW_STATS).fetchone()
        except psycopg.errors.InvalidCatalogName:
            return None  # the database is gone (app destroyed between listing and measuring)
        except psycopg.OperationalError as exc:
            raise ProviderUnavailable("postgres", f"cannot read statistics of {database!r}: {exc}") from exc
        assert row is not None and size is not None
        return int(row[0]), int(row[1]), int(size[0])

    def collect(self, hour_start: datetime) -> list[Reading]:
        databases = self._databases() if callable(self._databases) else self._databases
        readings: list[Reading] = []
        due = {
            app_id: database
            for app_id, database in sorted(databases.items())
            if not self.deltas.already_closed(app_id, "db_rows_read", hour_start)
        }
        if not due:
            return readings
        password = self._metering_role(list(due.values()))
        for app_id, database in due.items():
            measured = self._measure(database, password)
            if measured is None:
                continue
            rows_read, rows_written, size = measured
            _, read_delta = self.deltas.delta(app_id, "db_rows_read", rows_read, hour_start)
            _, written_delta = self.deltas.delta(app_id, "db_rows_written", rows_written, hour_start)
            readings.append(
                Reading(
                    app_id=app_id,
                    provider=self.provider,
                    source=self.name,
                    hour_start=hour_start,
                    metrics={
                        "db_rows_read": read_delta,
                        "db_rows_written": written_delta,
                        "db_storage_bytes": size,
                    },
                )
            )
        return readings
