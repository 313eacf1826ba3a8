"""Preview-data import into PostgreSQL: ``launchdeck db import`` against pgloader (the named baseline).

For each scale (1x = 100,000 users + 1,000,000 posts, a Prisma-shaped SQLite file with dates as epoch ms,
booleans as 0/1, decimals, JSON and about 1% of texts with tabs/newlines/quotes):

1. pgloader 3.6 with the load file that makes it correct (epoch-ms dates cast and converted after the
   load, quoted identifiers, ``_prisma_migrations`` excluded) into a fresh database;
2. ``launchdeck db import`` (a separate process, as a user runs it) into another fresh database;

then prints both times, their ratio, peak memory (RSS of the loading process, sampled every 50 ms; also
with its children), CPU seconds of the loader and of the PostgreSQL backends serving it (independent of
what else the shared machine runs), and whether each passes the same checks against the source: row
counts, sums, min/max dates and checksums of the text columns. Targets: launchdeck at least 2x faster, all checks pass, peak memory <= 150 MB.

Also, at 0.1x, the Turso target against the local Hrana test server: rows/s and HTTP requests per
10,000 rows.

Run: ``.venv/bin/python bench/import_vs_pgloader.py --scales 0.1 1 --rounds 3`` (add 3 for the 3x size).
Needs pgloader (``apt-get install -y pgloader``) and the local PostgreSQL server.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import settings
from engine.dbpath.ddl import make_conninfo_url
from engine.dbpath.importer import import_preview
from tests.servers.asgi import serve
from tests.servers.hrana import create_app

OUTPUT = Path(__file__).resolve().parent / "output"
EPOCH_2024_MS = 1_704_067_200_000
SCHEMA = """\
generator client {
  provider = "prisma-client"
  output   = "../generated/prisma"
}

datasource db {
  provider = "sqlite"
}

model User {
  id        Int      @id @default(autoincrement())
  email     String   @unique
  name      String
  isAdmin   Boolean  @default(false) @map("is_admin")
  balance   Decimal
  createdAt DateTime @default(now()) @map("created_at")
  posts     Post[]

  @@map("users")
}

model Post {
  id        Int      @id @default(autoincrement())
  authorId  Int      @map("author_id")
  author    User     @relation(fields: [authorId], references: [id])
  title     String
  body      String
  published Boolean  @default(false)
  score     Decimal?
  metadata  Json?
  createdAt DateTime @map("created_at")

  @@index([authorId])
  @@map("posts")
}
"""
SQLITE_DDL = """
CREATE TABLE "users" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "email" TEXT NOT NULL, "name" TEXT NOT NULL,
  "is_admin" BOOLEAN NOT NULL DEFAULT false, "balance" DECIMAL NOT NULL,
  "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "posts" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "author_id" INTEGER NOT NULL,
  "title" TEXT NOT NULL, "body" TEXT NOT NULL, "published" BOOLEAN NOT NULL DEFAULT false, "score" DECIMAL,
  "metadata" JSONB, "created_at" DATETIME NOT NULL,
  CONSTRAINT "posts_author_id_fkey" FOREIGN KEY ("author_id") REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE);
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE INDEX "posts_author_id_idx" ON "posts"("author_id");
CREATE TABLE "_prisma_migrations" ("id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,
  "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME,
  "started_at" DATETIME NOT NULL DEFAULT current_timestamp, "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
"""
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "launch",
    "deck",
    "prisma",
    "turso",
    "neon",
    "preview",
    "deploy",
    "cost",
    "cents",
    "margin",
    "tier",
]
SPECIAL = ["tab\there", "new\nline", "quote \" and ' both", "back\\slash", "\\N not null", "emoji 🚀"]


# ------------------------------------------------------------------------------------- the data
def build_source(path: Path, scale: float, seed: int = 42) -> tuple[int, int]:
    users, posts = int(100_000 * scale), int(1_000_000 * scale)
    if path.exists():
        return users, posts
    rng = random.Random(seed)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    conn = sqlite3.connect(partial)
    conn.executescript(SQLITE_DDL)
    conn.execute(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES ('p', 'c', '0_preview')"
    )

    def text(n: int) -> str:
        words = " ".join(rng.choice(WORDS) for _ in range(n))
        return f"{words} {rng.choice(SPECIAL)}" if rng.random() < 0.01 else words

    conn.executemany(
        "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                i,
                f"user{i}@example.com",
                text(2),
                int(i % 50 == 0),
                round(rng.uniform(0, 10_000), 2),
                EPOCH_2024_MS + rng.randrange(0, 63_072_000_000),
            )
            for i in range(1, users + 1)
        ),
    )
    conn.executemany(
        "INSERT INTO posts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                i,
                rng.randrange(1, users + 1),
                text(5),
                text(14),
                int(rng.random() < 0.6),
                round(rng.uniform(0, 5), 3) if rng.random() < 0.8 else None,
                json.dumps({"tags": [rng.choice(WORDS), "ü"], "views": rng.randrange(10_000)})
                if i % 2
                else None,
                EPOCH_2024_MS + rng.randrange(0, 63_072_000_000),
            )
            for i in range(1, posts + 1)
        ),
    )
    conn.commit()
    conn.close()
    partial.replace(path)
    return users, posts


# ------------------------------------------------------------------------------------- the checks
@dataclass
class Facts:
    counts: dict[str, int]
    sums: dict[str, str]
    dates: dict[str, tuple[int, int]]
    text_digests: dict[str, str]


def source_facts(path: Path) -> Facts:
    conn = sqlite3.connect(path)
    facts = Facts({}, {}, {}, {})
    for table, decimals, texts in (
        ("users", ["balance"], ["email", "name"]),
        ("posts", ["score"], ["title", "body"]),
    ):
        facts.counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for column in decimals:
            total = sum(
                (Decimal(repr(v)) for (v,) in conn.execute(f"SELECT {column} FROM {table}") if v is not None),
                Decimal(0),
            )
            facts.sums[f"{table}.{column}"] = str(total.normalize())
        low, high = conn.execute(f"SELECT min(created_at), max(created_at) FROM {table}").fetchone()
        facts.dates[table] = (low, high)
        digest = hashlib.sha256()
        for row in conn.execute(f"SELECT {', '.join(texts)} FROM {table} ORDER BY id"):
            digest.update("\x1f".join(row).encode() + b"\x1e")
        facts.text_digests[table] = digest.hexdigest()
    booleans = (
        conn.execute("SELECT sum(is_admin) FROM users").fetchone()[0],
        conn.execute("SELECT sum(published) FROM posts").fetchone()[0],
    )
    facts.sums["booleans"] = f"{booleans[0]}/{booleans[1]}"
    conn.close()
    return facts


KEYS_QUERY = (
    "SELECT count(*) FROM pg_constraint WHERE contype IN ('p', 'f') AND connamespace = 'public'::regnamespace"
    " AND conname NOT LIKE '\\_prisma\\_migrations%'"
)


def row(conn: psycopg.Connection, query: str) -> tuple[Any, ...]:
    found = conn.execute(query.encode()).fetchone()
    assert found is not None
    return tuple(found)


def postgres_facts(url: str) -> Facts:
    facts = Facts({}, {}, {}, {})
    with psycopg.connect(url) as conn:
        for table, decimals, texts in (
            ("users", ["balance"], ["email", "name"]),
            ("posts", ["score"], ["title", "body"]),
        ):
            facts.counts[table] = row(conn, f'SELECT count(*) FROM "{table}"')[0]
            for column in decimals:
                total = row(conn, f'SELECT coalesce(sum("{column}"), 0) FROM "{table}"')[0]
                facts.sums[f"{table}.{column}"] = str(Decimal(total).normalize())
            low, high = row(
                conn,
                f"SELECT (extract(epoch FROM min(created_at)) * 1000)::bigint,"
                f' (extract(epoch FROM max(created_at)) * 1000)::bigint FROM "{table}"',
            )
            facts.dates[table] = (low, high)
            digest = hashlib.sha256()
            query = f'COPY (SELECT {", ".join(texts)} FROM "{table}" ORDER BY id) TO STDOUT (FORMAT BINARY)'
            with conn.cursor().copy(query) as copy:
                copy.set_types(["text"] * len(texts))
                for texts_row in copy.rows():
                    digest.update("\x1f".join(texts_row).encode() + b"\x1e")
            facts.text_digests[table] = digest.hexdigest()
        booleans = row(
            conn,
            "SELECT (SELECT count(*) FILTER (WHERE is_admin) FROM users),"
            " (SELECT count(*) FILTER (WHERE published) FROM posts)",
        )
        facts.sums["booleans"] = f"{booleans[0]}/{booleans[1]}"
    return facts


def compare(expected: Facts, found: Facts) -> list[str]:
    problems = []
    for name in ("counts", "sums", "dates", "text_digests"):
        want, got = getattr(expected, name), getattr(found, name)
        for key in want:
            if want[key] != got.get(key):
                problems.append(f"{name}[{key}]: source {want[key]} != target {got.get(key)}")
    return problems


# ------------------------------------------------------------------------------------- the runs
@dataclass
class Measured:
    seconds: float
    peak_mb: float  # RSS of the process itself
    tree_mb: float  # RSS of it and its children (Node for Prisma's engines, worker processes)
    tree_pss_mb: float  # PSS of it and its children: pages shared between them counted once
    cpu_s: float  # CPU of the process and its descendants (worker processes under a forkserver too)
    server_cpu_s: float  # CPU of the PostgreSQL backends serving the database (sampled, so about)
    result: subprocess.CompletedProcess[str]


def run_measured(command: list[str], admin_url: str, database: str, **kwargs: Any) -> Measured:
    """Run ``command`` and watch its memory, its CPU and the CPU of the server processes it uses.

    CPU seconds do not depend on what else the shared machine runs, unlike the wall-clock ratio.
    """
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    watched = psutil.Process(process.pid)
    peak = tree_peak = tree_pss_peak = 0
    out: list[str] = []
    backends: dict[int, psutil.Process] = {}
    backend_cpu: dict[int, float] = {}
    # Own CPU of every process in the tree, sampled: a forkserver's workers are not reaped by the loader,
    # so the rusage of its children misses them.
    tree_cpu: dict[int, float] = {}

    def drain() -> None:
        assert process.stdout is not None and process.stderr is not None
        out.append(process.stdout.read())
        out.append(process.stderr.read())

    reader = threading.Thread(target=drain)
    reader.start()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        tick = 0
        while process.poll() is None:
            try:
                # PSS walks every page table: sampled every 4th tick (0.2 s). The sampler shares the two
                # cores with what it measures, so it samples no more often than the peaks need.
                pss = tick % 4 == 0
                memory = watched.memory_full_info() if pss else watched.memory_info()
                own, own_pss = memory.rss, getattr(memory, "pss", 0)
                times = watched.cpu_times()
                tree_cpu[watched.pid] = times.user + times.system
                children = children_pss = 0
                for child in watched.children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        memory = child.memory_full_info() if pss else child.memory_info()
                        children += memory.rss
                        children_pss += getattr(memory, "pss", 0)
                        times = child.cpu_times()
                        tree_cpu[child.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                break
            peak = max(peak, own)
            tree_peak = max(tree_peak, own + children)
            tree_pss_peak = max(tree_pss_peak, own_pss + children_pss)
            if tick % 4 == 0:
                for (pid,) in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
                ).fetchall():
                    if pid not in backends:
                        with contextlib.suppress(psutil.NoSuchProcess):
                            backends[pid] = psutil.Process(pid)
            for pid, backend in backends.items():
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = backend.cpu_times()
                    backend_cpu[pid] = times.user + times.system
            tick += 1
            time.sleep(0.05)
    reader.join()
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = max(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, sum(tree_cpu.values()))
    result = subprocess.CompletedProcess(
        command, process.returncode, out[0] if out else "", out[1] if len(out) > 1 else ""
    )
    return Measured(
        seconds, peak / 1e6, tree_peak / 1e6, tree_pss_peak / 1e6, cpu, sum(backend_cpu.values()), result
    )


def fresh_database(admin_url: str, label: str) -> str:
    name = f"ld_bench_{label}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    return name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def pgloader_load_file(source: Path, url: str) -> str:
    return f"""LOAD DATABASE
  FROM sqlite://{source}
  INTO {url}
WITH include drop, create tables, create indexes, reset sequences, quote identifiers
EXCLUDING TABLE NAMES LIKE '_prisma_migrations'
CAST column users.created_at to bigint drop default drop typemod,
     column posts.created_at to bigint drop default drop typemod,
     column posts.metadata to text drop typemod,
     type boolean to boolean drop typemod
AFTER LOAD DO
  $$ ALTER TABLE "users" ALTER COLUMN created_at TYPE timestamp(3)
       USING to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC' $$,
  $$ ALTER TABLE "users" ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP $$,
  $$ ALTER TABLE "posts" ALTER COLUMN created_at TYPE timestamp(3)
       USING to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC' $$,
  $$ ALTER TABLE "posts" ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb $$;
"""


def run_pgloader(
    source: Path, scale: float, admin_url: str, workdir: Path, expected: Facts
) -> tuple[Any, ...]:
    """(seconds, peak MB, peak MB with children, problems, keys kept) of pgloader into a fresh database."""
    # pgloader, the baseline
    name = fresh_database(admin_url, "pgloader")
    try:
        url = make_conninfo_url(admin_url, name)
        load = workdir / f"bench_{scale:g}.load"
        load.write_text(pgloader_load_file(source, url))
        measured = run_measured(["pgloader", "--quiet", str(load)], admin_url, name, cwd=workdir)
        done = measured.result
        problems = (
            compare(expected, postgres_facts(url)) if done.returncode == 0 else [f"exit {done.returncode}"]
        )
        with psycopg.connect(url) as conn:
            keys = row(conn, KEYS_QUERY)
        return (measured, problems, keys[0])
    finally:
        drop_database(admin_url, name)


def run_launchdeck(
    source: Path, scale: float, admin_url: str, workdir: Path, expected: Facts
) -> tuple[Any, ...]:
    """(seconds, peak MB, peak MB with children, problems, keys kept, self-verified) of ``launchdeck db import``."""
    # launchdeck db import, run as a user runs it
    name = fresh_database(admin_url, "launchdeck")
    app_dir = workdir / f"app_{scale:g}"
    (app_dir / "prisma").mkdir(parents=True, exist_ok=True)
    (app_dir / "prisma" / "schema.prisma").write_text(SCHEMA)
    try:
        url = make_conninfo_url(admin_url, name)
        command = [
            sys.executable,
            "-m",
            "engine.dbpath",
            "import",
            "--schema",
            str(app_dir / "prisma" / "schema.prisma"),
            "--from",
            str(source),
            "--to",
            url,
            "--json",
            "--replace",
        ]
        measured = run_measured(command, admin_url, name, cwd=Path(__file__).resolve().parent.parent)
        done = measured.result
        report = (
            json.loads(done.stdout)
            if done.stdout.strip()
            else {"verified": False, "error": done.stderr[-500:]}
        )
        problems = (
            compare(expected, postgres_facts(url))
            if done.returncode == 0
            else [f"exit {done.returncode}: {report.get('error')}"]
        )
        with psycopg.connect(url) as conn:
            keys = row(conn, KEYS_QUERY)
        return (measured, problems, keys[0], report.get("verified"))
    finally:
        drop_database(admin_url, name)


def bench_scale(scale: float, admin_url: str, workdir: Path, rounds: int) -> dict[str, Any]:
    """``rounds`` alternating pairs (pgloader, then launchdeck): the machine is shared, so each pair's ratio
    is taken from runs close in time, and the median ratio is the figure."""
    source = OUTPUT / f"prisma_shaped_{scale:g}x.sqlite"
    started = time.monotonic()
    users, posts = build_source(source, scale)
    built = time.monotonic() - started
    expected = source_facts(source)
    print(
        f"\n== {scale:g}x: {users:,} users + {posts:,} posts, {source.stat().st_size / 1e6:.0f} MB"
        f" (built or reused in {built:.1f} s)"
    )
    rows = users + posts
    ratios: list[float] = []
    ld_times: list[float] = []
    pg_times: list[float] = []
    ld_peaks: list[float] = []
    ld_tree_pss: list[float] = []
    cpu_ratios: list[float] = []
    for _ in range(rounds):
        pg, pg_problems, pg_keys = run_pgloader(source, scale, admin_url, workdir, expected)
        ld, ld_problems, ld_keys, verified = run_launchdeck(source, scale, admin_url, workdir, expected)
        for label, run, problems, keys, extra in (
            ("pgloader (baseline)", pg, pg_problems, pg_keys, ""),
            ("launchdeck import:  ", ld, ld_problems, ld_keys, f"  self-verified {verified}"),
        ):
            print(
                f"  {label} {run.seconds:6.2f} s  {rows / run.seconds:9,.0f} rows/s  peak {run.peak_mb:4.0f} MB"
                f" (with children: RSS sum {run.tree_mb:4.0f}, PSS sum {run.tree_pss_mb:4.0f})  cpu {run.cpu_s:5.1f} s + server {run.server_cpu_s:5.1f} s"
                f"  checks {'pass' if not problems else 'FAIL'}  keys kept {keys}/3{extra}"
            )
            for problem in problems[:6]:
                print(f"      {problem}")
        pg_cpu, ld_cpu = pg.cpu_s + pg.server_cpu_s, ld.cpu_s + ld.server_cpu_s
        print(
            f"  speed-up: {pg.seconds / ld.seconds:.2f}x   CPU used (loader + server): {pg_cpu / ld_cpu:.2f}x less"
        )
        ratios.append(pg.seconds / ld.seconds)
        cpu_ratios.append(pg_cpu / ld_cpu)
        pg_times.append(pg.seconds)
        ld_times.append(ld.seconds)
        ld_peaks.append(ld.peak_mb)
        ld_tree_pss.append(ld.tree_pss_mb)
    print(
        f"  median speed-up over {rounds} pair(s): {statistics.median(ratios):.2f}x (target >= 2x); "
        f"CPU {statistics.median(cpu_ratios):.2f}x less   "
        f"peak memory target <= 150 MB: {'met' if max(ld_peaks) <= 150 else 'MISSED'} by the process itself,"
        f" {'met' if max(ld_tree_pss) <= 150 else 'MISSED'} with its children (PSS sum {max(ld_tree_pss):.0f} MB:"
        " Node for Prisma's engines at the start, the worker processes for large tables)"
    )
    return {
        "scale": scale,
        "rows": rows,
        "pgloader_s": statistics.median(pg_times),
        "launchdeck_s": statistics.median(ld_times),
        "launchdeck_peak_mb": max(ld_peaks),
        "launchdeck_tree_pss_mb": max(ld_tree_pss),
    }


def bench_turso(scale: float, workdir: Path) -> None:
    source = OUTPUT / f"prisma_shaped_{scale:g}x.sqlite"
    users, posts = build_source(source, scale)
    database = workdir / "turso.db"
    sqlite3.connect(database).close()
    app_dir = workdir / "turso_app"
    (app_dir / "prisma").mkdir(parents=True, exist_ok=True)
    (app_dir / "prisma" / "schema.prisma").write_text(SCHEMA)
    app = create_app(lambda _host: database)
    with serve(app) as url:
        started = time.monotonic()
        report = import_preview(app_dir / "prisma" / "schema.prisma", source, f"{url}?authToken=bench")
        seconds = time.monotonic() - started
    app.state.streams.close_all()
    rows = users + posts
    stats = app.state.stats
    print(f"\n== Turso target (local Hrana test server, {scale:g}x, {rows:,} rows)")
    print(
        f"  {seconds:.2f} s  {rows / seconds:,.0f} rows/s  {stats.http_requests} HTTP requests "
        f"({stats.http_requests / rows * 10_000:.1f} per 10,000 rows, reads for verification included)  "
        f"verified {report.verified}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--turso-scale", type=float, default=0.1, help="0 skips the Turso run")
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternating pgloader/launchdeck pairs per scale (median ratio)"
    )
    args = parser.parse_args()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    admin_url = settings().postgres_admin_url
    with tempfile.TemporaryDirectory(prefix="ld-bench-") as scratch:
        workdir = Path(scratch)
        summary = [bench_scale(scale, admin_url, workdir, args.rounds) for scale in args.scales]
        if len(summary) > 1:
            print("\n== growth (launchdeck seconds per million rows; linear cost keeps it flat)")
            for entry in summary:
                print(
                    f"  {entry['scale']:g}x: {entry['launchdeck_s'] / entry['rows'] * 1e6:.2f} s per 1M rows, "
                    f"pgloader {entry['pgloader_s'] / entry['rows'] * 1e6:.2f}, peak {entry['launchdeck_peak_mb']:.0f} MB"
                )
        if args.turso_scale > 0:
            bench_turso(args.turso_scale, workdir)


if __name__ == "__main__":
    main()
