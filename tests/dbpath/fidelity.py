"""A preview SQLite file holding every storage form real Prisma preview files hold (the fidelity matrix).

Tables are created with the SQL Prisma's schema engine writes for SQLite (the checked-in expectation),
except ``accounts.balance``, declared TEXT as some preview builders do, so that decimals can be stored
as REAL, INTEGER *and* TEXT in one column.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from tests.dbpath.conftest import HERE

BIG_ID = 2**53 + 1  # not representable as a JavaScript number
NOTE = "quote' \" tab\t newline\n backslash\\ \\N emoji 🎉 done"
PROFILE = '{"nested": {"list": [1, 2.5, "ü"]}, "emoji": "🚀"}'
AVATAR = b"\x00\x01\xfe\xff"

ACCOUNTS = [
    # id, email, active, plan, balance, ratio, created_at, profile, avatar, note, manager_id
    (1, "ada@example.com", 1, "FREE", 0.1, 1.5, 1767225600123, PROFILE, AVATAR, NOTE, None),
    (BIG_ID, "big@example.com", 0, "pro", "-12.50", None, "2026-01-02T09:30:00.000Z", None, None, None, 1),
    (3, "offset@example.com", 1, "FREE", 7, -0.25, "2026-01-03T14:05:00.250+02:00", "[]", b"", "", 3),
    (
        4,
        "ts@example.com",
        0,
        "pro",
        "123456.789",
        None,
        "2026-01-03 14:05:00",
        '"just a string"',
        None,
        "\\N",
        BIG_ID,
    ),
]
TAGS = [(1, "red"), (2, 'blue "quoted"')]
MEMBERSHIPS = [
    (1, "core", "owner", "2026-02-01T00:00:00Z"),
    (1, "docs", "member", 1769904000000),
    (BIG_ID, "core", "member", "2026-02-01 08:00:00"),
]
LINKS = [(1, 1), (1, 2), (BIG_ID, 2)]


def prisma_sqlite_ddl() -> str:
    ddl = (HERE / "expected" / "fidelity.sqlite.sql").read_text()
    return ddl.replace('"balance" DECIMAL NOT NULL', '"balance" TEXT NOT NULL')


def build_source(path: Path, *, extra_accounts: Sequence[tuple[object, ...]] = ()) -> Path:
    """Write the fidelity preview file at ``path`` (a plain SQLite file, as sql.js exports one)."""
    conn = sqlite3.connect(path)
    conn.executescript(prisma_sqlite_ddl())
    conn.executescript(
        'CREATE TABLE "_prisma_migrations" ("id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL,'
        ' "finished_at" DATETIME, "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME,'
        ' "started_at" DATETIME NOT NULL DEFAULT current_timestamp, "applied_steps_count" INTEGER NOT NULL DEFAULT 0);'
        " INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES ('x', 'y', '20260101_preview');"
    )
    conn.executemany(
        "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [*ACCOUNTS, *extra_accounts]
    )
    conn.executemany('INSERT INTO "Tag" VALUES (?, ?)', TAGS)
    conn.executemany("INSERT INTO memberships VALUES (?, ?, ?, ?)", MEMBERSHIPS)
    conn.executemany('INSERT INTO "_AccountToTag" VALUES (?, ?)', LINKS)
    conn.commit()
    conn.close()
    return path
