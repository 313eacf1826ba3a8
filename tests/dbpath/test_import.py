"""`import_preview`: the fidelity matrix into PostgreSQL, a libSQL file and Turso over Hrana, and failures."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from engine.dbpath.importer import import_preview
from engine.errors import Conflict, InputError, TerminalError, TransientError
from tests.dbpath.conftest import FIDELITY_SCHEMA
from tests.dbpath.fidelity import AVATAR, BIG_ID, NOTE, PROFILE, build_source
from tests.servers.asgi import serve
from tests.servers.hrana import FaultPlan, create_app

TOKEN = "test-token"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "prisma").mkdir()
    (tmp_path / "prisma" / "schema.prisma").write_text(FIDELITY_SCHEMA.read_text())
    return tmp_path


@pytest.fixture
def source(app_dir: Path) -> Path:
    return build_source(app_dir / "preview.sqlite")


def schema_of(app_dir: Path) -> Path:
    return app_dir / "prisma" / "schema.prisma"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------ PostgreSQL
def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode()).fetchall()


def test_fidelity_matrix_into_postgresql(app_dir: Path, source: Path, pg_database: str) -> None:
    before = digest(source)
    seen: list[tuple[int, int, str]] = []
    report = import_preview(schema_of(app_dir), source, pg_database, progress=lambda *p: seen.append(p))

    assert report.ok, report
    assert report.tables["accounts"].model_dump() == {
        "source_rows": 4,
        "imported_rows": 4,
        "rejected_rows": 0,
    }
    assert "_prisma_migrations" not in report.tables
    assert seen[-1] == (12, 12, "_AccountToTag")
    assert digest(source) == before  # the source is never modified

    accounts = {
        r[0]: r[1:]
        for r in pg_rows(
            pg_database,
            "SELECT id, active, plan::text, balance, ratio, "
            "created_at, profile, avatar, note, manager_id FROM accounts",
        )
    }
    assert accounts[1] == (
        True,
        "FREE",
        Decimal("0.1"),
        1.5,
        datetime(2026, 1, 1, 0, 0, 0, 123000),
        json.loads(PROFILE),
        AVATAR,
        NOTE,
        None,
    )
    assert accounts[BIG_ID] == (
        False,
        "pro",
        Decimal("-12.5"),
        None,
        datetime(2026, 1, 2, 9, 30),
        None,
        None,
        None,
        1,
    )
    assert accounts[3] == (
        True,
        "FREE",
        Decimal("7"),
        -0.25,
        datetime(2026, 1, 3, 12, 5, 0, 250000),
        [],
        b"",
        "",
        3,
    )
    assert accounts[4] == (
        False,
        "pro",
        Decimal("123456.789"),
        None,
        datetime(2026, 1, 3, 14, 5),
        "just a string",
        None,
        "\\N",
        BIG_ID,
    )
    assert sorted(pg_rows(pg_database, "SELECT account_id, team_slug, joined_at FROM memberships")) == [
        (1, "core", datetime(2026, 2, 1)),
        (1, "docs", datetime(2026, 2, 1)),
        (BIG_ID, "core", datetime(2026, 2, 1, 8)),
    ]
    assert sorted(pg_rows(pg_database, 'SELECT "A", "B" FROM "_AccountToTag"')) == [
        (1, 1),
        (1, 2),
        (BIG_ID, 2),
    ]
    constraints = {
        r[0]
        for r in pg_rows(
            pg_database, "SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
        )
    }
    assert {
        "accounts_pkey",
        "memberships_pkey",
        "accounts_manager_id_fkey",
        "_AccountToTag_A_fkey",
    } <= constraints
    # The Tag sequence moved past the imported ids, so the app's next insert works.
    assert pg_rows(pg_database, """INSERT INTO "Tag" (label) VALUES ('new') RETURNING id""") == [(3,)]
    baseline = pg_rows(
        pg_database, "SELECT migration_name, checksum, finished_at IS NOT NULL FROM _prisma_migrations"
    )
    migration = (app_dir / "prisma" / "migrations" / "0_init" / "migration.sql").read_text()
    assert baseline == [("0_init", hashlib.sha256(migration.encode()).hexdigest(), True)]
    assert (
        'provider = "postgresql"' in (app_dir / "prisma" / "migrations" / "migration_lock.toml").read_text()
    )


def test_unconvertible_values_are_reported_and_nothing_is_loaded(app_dir: Path, pg_database: str) -> None:
    bad = [
        (10, "two@example.com", 2, "FREE", "1", None, 1767225600000, None, None, None, None),
        (11, "gold@example.com", 1, "GOLD", "1", None, "yesterday", "{broken", None, None, None),
    ]
    source = build_source(app_dir / "preview.sqlite", extra_accounts=bad)
    report = import_preview(schema_of(app_dir), source, pg_database)

    assert not report.ok and not report.verified
    found = {(r.table, r.key, r.column, r.value) for r in report.rejected}
    assert found == {
        ("accounts", "id=10", "active", 2),
        ("accounts", "id=11", "plan", "GOLD"),
        ("accounts", "id=11", "created_at", "yesterday"),
        ("accounts", "id=11", "profile", "{broken"),
    }
    assert all(r.reason for r in report.rejected)
    assert report.tables["accounts"].rejected_rows == 2
    assert pg_rows(pg_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    assert not (app_dir / "prisma" / "migrations").exists()


def test_non_empty_target_needs_replace(app_dir: Path, source: Path, pg_database: str) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE keep_me (id int)")
        conn.execute("INSERT INTO keep_me VALUES (42)")
    with pytest.raises(Conflict, match="--replace"):
        import_preview(schema_of(app_dir), source, pg_database)
    assert pg_rows(pg_database, "SELECT id FROM keep_me") == [(42,)]

    report = import_preview(schema_of(app_dir), source, pg_database, replace=True)
    assert report.ok
    assert pg_rows(pg_database, "SELECT to_regclass('keep_me') IS NULL, count(*) FROM accounts") == [
        (True, 4)
    ]


# ------------------------------------------------------------------------------------ libSQL file
EXPECTED_SQLITE_ACCOUNTS = {
    1: (1, "FREE", 0.1, 1.5, "2026-01-01T00:00:00.123Z", PROFILE, AVATAR, NOTE, None),
    BIG_ID: (0, "pro", -12.5, None, "2026-01-02T09:30:00.000Z", None, None, None, 1),
    3: (1, "FREE", 7, -0.25, "2026-01-03T12:05:00.250Z", "[]", b"", "", 3),
    4: (0, "pro", 123456.789, None, "2026-01-03T14:05:00.000Z", '"just a string"', None, "\\N", BIG_ID),
}


def sqlite_accounts(path: Path) -> dict[int, tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT id, active, plan, balance, ratio, created_at, profile, avatar, note, manager_id FROM accounts"
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_fidelity_matrix_into_libsql_file(app_dir: Path, source: Path) -> None:
    target = app_dir / "prod.db"
    report = import_preview(schema_of(app_dir), source, f"file:{target}")

    assert report.ok, report
    assert sqlite_accounts(target) == EXPECTED_SQLITE_ACCOUNTS
    with sqlite3.connect(target) as conn:
        assert sorted(conn.execute("SELECT * FROM memberships").fetchall()) == [
            (1, "core", "owner", "2026-02-01T00:00:00.000Z"),
            (1, "docs", "member", "2026-02-01T00:00:00.000Z"),
            (BIG_ID, "core", "member", "2026-02-01T08:00:00.000Z"),
        ]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
        assert {"accounts_email_key", "_AccountToTag_AB_unique"} <= indexes
        assert conn.execute("SELECT migration_name FROM _prisma_migrations").fetchall() == [("0_init",)]
    assert 'provider = "sqlite"' in (app_dir / "prisma" / "migrations" / "migration_lock.toml").read_text()


def test_failed_import_leaves_the_target_file_as_it_was(app_dir: Path) -> None:
    target = app_dir / "prod.db"
    with sqlite3.connect(target) as conn:
        conn.execute("CREATE TABLE old (x)")
        conn.execute("INSERT INTO old VALUES ('precious')")
    before = digest(target)
    too_precise = [
        (12, "p@example.com", 1, "FREE", "12345678901234567890.123456789", None, 0, None, None, None, None)
    ]
    source = build_source(app_dir / "preview.sqlite", extra_accounts=too_precise)

    report = import_preview(schema_of(app_dir), source, f"file:{target}", replace=True)

    assert not report.ok
    assert [(r.key, r.column) for r in report.rejected] == [("id=12", "balance")]
    assert "precision" in report.rejected[0].reason
    assert digest(target) == before
    assert [p.name for p in app_dir.iterdir() if p.name.startswith(".prod.db")] == []


def test_exact_big_decimal_reaches_postgresql(app_dir: Path, pg_database: str) -> None:
    too_precise = [
        (12, "p@example.com", 1, "FREE", "12345678901234567890.123456789", None, 0, None, None, None, None)
    ]
    source = build_source(app_dir / "preview.sqlite", extra_accounts=too_precise)
    assert import_preview(schema_of(app_dir), source, pg_database).ok
    assert pg_rows(pg_database, "SELECT balance FROM accounts WHERE id = 12") == [
        (Decimal("12345678901234567890.123456789"),)
    ]


# ------------------------------------------------------------------------------------ sources
def test_sql_dump_source_gives_the_same_result(app_dir: Path, source: Path) -> None:
    dump = app_dir / "preview.sql"
    with sqlite3.connect(source) as conn:
        dump.write_text("\n".join(conn.iterdump()) + "\n")
    target = app_dir / "from-dump.db"
    report = import_preview(schema_of(app_dir), dump, f"file:{target}")
    assert report.ok, report
    assert sqlite_accounts(target) == EXPECTED_SQLITE_ACCOUNTS


def test_dump_with_syntax_error_names_its_line(app_dir: Path) -> None:
    dump = app_dir / "broken.sql"
    dump.write_text(
        'BEGIN TRANSACTION;\nCREATE TABLE "Tag" ("id" INTEGER, "label" TEXT);\nINSERT INTO "Tag" VALUES (1,\n  \'red\';\nCOMMIT;\n'
    )
    with pytest.raises(InputError, match="line 3"):
        import_preview(schema_of(app_dir), dump, f"file:{app_dir / 'x.db'}")


def test_corrupt_sqlite_file_is_refused(app_dir: Path, source: Path) -> None:
    data = bytearray(source.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    broken = app_dir / "broken.sqlite"
    broken.write_bytes(bytes(data))
    with pytest.raises(InputError, match="damaged SQLite file"):
        import_preview(schema_of(app_dir), broken, f"file:{app_dir / 'x.db'}")
    assert not (app_dir / "x.db").exists()


def test_source_damaged_where_the_rows_are_not_is_refused_and_nothing_is_loaded(
    app_dir: Path, source: Path, pg_database: str
) -> None:
    # Garbage over an index page: every row still reads, only the full check of the file sees the damage.
    with sqlite3.connect(source) as conn:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_schema WHERE name = 'accounts_email_key'"
        ).fetchone()
    conn.close()
    data = bytearray(source.read_bytes())
    data[(root - 1) * page_size : root * page_size] = b"\xfe" * page_size
    source.write_bytes(bytes(data))
    with pytest.raises(InputError, match="damaged SQLite file"):
        import_preview(schema_of(app_dir), source, pg_database)
    assert pg_rows(pg_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_schema_that_does_not_match_the_data_is_refused(app_dir: Path, source: Path) -> None:
    schema = schema_of(app_dir)
    schema.write_text(schema.read_text().replace("  note        String?\n", "  notes       String?\n"))
    with pytest.raises(
        InputError, match=r"table accounts has no column notes.*accounts\.note is not in the Prisma schema"
    ):
        import_preview(schema, source, f"file:{app_dir / 'x.db'}")


# ------------------------------------------------------------------------------------ Turso (Hrana)
@pytest.fixture
def turso(tmp_path: Path) -> Iterator[tuple[str, Path, FaultPlan]]:
    database = tmp_path / "turso.db"
    sqlite3.connect(database).close()
    faults = FaultPlan()
    app = create_app(
        lambda _host: database, faults, authorize=lambda _h, token: token == TOKEN, idle_seconds=0.5
    )
    with serve(app) as url:
        yield url, database, faults
    app.state.streams.close_all()


def test_fidelity_matrix_into_turso_over_hrana(
    app_dir: Path, source: Path, turso: tuple[str, Path, FaultPlan]
) -> None:
    url, database, faults = turso
    faults.rate_limit(retry_after=0.1)
    report = import_preview(schema_of(app_dir), source, f"{url}?authToken={TOKEN}")
    assert report.ok, report
    assert sqlite_accounts(database) == EXPECTED_SQLITE_ACCOUNTS
    assert faults.injected  # the 429 happened and was waited out


def test_turso_import_survives_a_dropped_connection(
    app_dir: Path, source: Path, turso: tuple[str, Path, FaultPlan]
) -> None:
    url, database, faults = turso
    faults.slow(0.0, times=3).drop(after_execute=True)  # the 4th request runs, then its answer is lost
    report = import_preview(schema_of(app_dir), source, f"{url}?authToken={TOKEN}")
    assert report.ok, report
    assert sqlite_accounts(database) == EXPECTED_SQLITE_ACCOUNTS


def test_turso_outage_fails_and_leaves_the_database_empty(
    app_dir: Path, source: Path, turso: tuple[str, Path, FaultPlan]
) -> None:
    url, database, faults = turso
    faults.slow(0.0, times=2).server_error(503, times=100)
    with pytest.raises(TransientError, match="503"):
        import_preview(schema_of(app_dir), source, f"{url}?authToken={TOKEN}")
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_schema").fetchone() == (0,)


def test_turso_wrong_token_is_an_input_error(
    app_dir: Path, source: Path, turso: tuple[str, Path, FaultPlan]
) -> None:
    url, _, _ = turso
    with pytest.raises(InputError, match="auth token"):
        import_preview(schema_of(app_dir), source, f"{url}?authToken=wrong")


# ------------------------------------------------------------------------------------ verification
@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (
            lambda rows: [(*rows[0][:3], "changed", *rows[0][4:]), *rows[1:]],
            "accounts.plan: checksums differ",
        ),
        (lambda rows: rows[:-1], "accounts: 4 rows in the source, 3 in the target"),
        (
            lambda rows: [
                (*rows[0][:9], rows[1][9], rows[0][10]),
                (*rows[1][:9], rows[0][9], rows[1][10]),
                *rows[2:],
            ],
            "values sit in other rows",
        ),
    ],
    ids=["changed-value", "lost-row", "swapped-values"],
)
def test_verification_catches_what_the_load_got_wrong(
    app_dir: Path, source: Path, monkeypatch: pytest.MonkeyPatch, corrupt: Any, problem: str
) -> None:
    from engine.dbpath.targets.sqlite_file import SqliteFileTarget

    original = SqliteFileTarget.load

    def faulty_load(self: SqliteFileTarget, table: Any, rows: Any) -> None:
        original(self, table, corrupt(list(rows)) if table.name == "accounts" else rows)

    monkeypatch.setattr(SqliteFileTarget, "load", faulty_load)
    target = app_dir / "prod.db"
    report = import_preview(schema_of(app_dir), source, f"file:{target}")

    assert not report.ok and not report.verified
    assert report.error is not None and problem in report.error
    assert not target.exists()  # nothing was moved into place


def test_duplicate_values_under_a_unique_key_fail_cleanly(app_dir: Path, pg_database: str) -> None:
    source = app_dir / "preview.sqlite"
    build_source(source)
    with sqlite3.connect(source) as conn:  # a preview built without Prisma's unique index
        conn.execute('DROP INDEX "accounts_email_key"')
        conn.execute("UPDATE accounts SET email = 'ada@example.com' WHERE id = 4")
    conn.close()
    with pytest.raises(TerminalError, match="accounts_email_key"):
        import_preview(schema_of(app_dir), source, pg_database)
    assert pg_rows(pg_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


# ------------------------------------------------------------------------------------ worker processes
@pytest.fixture
def in_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every table converted by worker processes, two rows per chunk (large tables do this for real)."""
    from engine.dbpath import parallel

    monkeypatch.setattr(parallel, "MIN_ROWS", 1)
    monkeypatch.setattr(parallel, "MIN_FILE_BYTES", 1)
    monkeypatch.setattr(parallel, "CHUNK_ROWS", 2)


@pytest.mark.usefixtures("in_workers")
def test_fidelity_matrix_into_postgresql_through_worker_processes(
    app_dir: Path, source: Path, pg_database: str
) -> None:
    test_fidelity_matrix_into_postgresql(app_dir, source, pg_database)


@pytest.mark.usefixtures("in_workers")
def test_worker_processes_from_a_process_running_other_threads(
    app_dir: Path, source: Path, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the console's server calls it: a fork could copy another thread's lock, so a forkserver starts
    the workers, with the same result."""
    from engine.dbpath import parallel

    started: list[str] = []
    start_pool = parallel.start_pool

    def start_forkserver_pool() -> ProcessPoolExecutor:
        started.append("forkserver")
        return start_pool()

    monkeypatch.setattr(parallel, "start_pool", start_forkserver_pool)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        test_fidelity_matrix_into_postgresql(app_dir, source, pg_database)
    finally:
        stop.set()
        other.join()
    assert started == ["forkserver"]


@pytest.mark.usefixtures("in_workers")
def test_worker_processes_report_unconvertible_values_and_load_nothing(
    app_dir: Path, pg_database: str
) -> None:
    test_unconvertible_values_are_reported_and_nothing_is_loaded(app_dir, pg_database)


@pytest.mark.usefixtures("in_workers")
def test_worker_processes_with_replace_keep_the_target_on_failure(app_dir: Path, pg_database: str) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE keep_me (id int)")
        conn.execute("INSERT INTO keep_me VALUES (42)")
    source = app_dir / "preview.sqlite"
    build_source(source)
    with sqlite3.connect(source) as sconn:
        sconn.execute('DROP INDEX "accounts_email_key"')
        sconn.execute("UPDATE accounts SET email = 'ada@example.com' WHERE id = 4")
    sconn.close()
    with pytest.raises(TerminalError, match="accounts_email_key"):
        import_preview(schema_of(app_dir), source, pg_database, replace=True)
    assert pg_rows(pg_database, "SELECT id FROM keep_me") == [(42,)]
    assert pg_rows(pg_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(1,)]


# ------------------------------------------------------------------------------------ native types
NATIVE_SCHEMA = """
datasource db {
  provider = "postgresql"
}

model Order {
  id       Int      @id
  code     String   @db.VarChar(12)
  total    Decimal  @db.Decimal(10, 2)
  placedAt DateTime @db.Timestamptz(3)
  payload  Json     @db.Json
  %s
}
"""


def _native_source(path: Path, extra: str = "") -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(
            f'CREATE TABLE "Order" (id INTEGER PRIMARY KEY, code TEXT, total DECIMAL, "placedAt" DATETIME,'
            f" payload TEXT{extra})"
        )
        conn.execute(
            'INSERT INTO "Order" VALUES (1, \'A-1\', 12.5, 1767225600123, \'{"b": 1, "a": [1.50]}\''
            + (", 'x'" if extra else "")
            + ")"
        )
    conn.close()
    return path


def test_schema_written_for_postgresql_keeps_its_native_types(app_dir: Path, pg_database: str) -> None:
    schema_of(app_dir).write_text(NATIVE_SCHEMA % "")
    report = import_preview(schema_of(app_dir), _native_source(app_dir / "preview.sqlite"), pg_database)
    assert report.ok and report.verified, report.error
    assert pg_rows(
        pg_database, 'SELECT code, total, "placedAt" AT TIME ZONE \'UTC\', payload::text FROM "Order"'
    ) == [("A-1", Decimal("12.50"), datetime(2026, 1, 1, 0, 0, 0, 123000), '{"a": [1.50], "b": 1}')]
    types = pg_rows(
        pg_database,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = '\"Order\"'::regclass AND attnum > 0 ORDER BY attnum",
    )
    assert [t for (t,) in types][1:] == [
        "character varying(12)",
        "numeric(10,2)",
        "timestamp(3) with time zone",
        "json",
    ]


def test_native_type_the_import_cannot_send_is_refused_before_anything_is_written(
    app_dir: Path, pg_database: str
) -> None:
    schema_of(app_dir).write_text(NATIVE_SCHEMA % "ref String @db.Uuid")
    source = _native_source(app_dir / "preview.sqlite", ", ref TEXT")
    with pytest.raises(InputError, match=r"Order\.ref is declared @db\.Uuid.*remove the attribute"):
        import_preview(schema_of(app_dir), source, pg_database)
    assert pg_rows(pg_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
