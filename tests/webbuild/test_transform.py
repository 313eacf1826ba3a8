"""The transformed working copy: source untouched, schema valid for Prisma 7, adapter wired from env."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.dbpath.node import validate_schema
from engine.errors import Conflict, InputError
from engine.webbuild import transform
from engine.webbuild.build import lockfile_in_sync
from engine.webbuild.transform import workspace_packages
from tests.webbuild.apps import EXAMPLES, make_app, snapshot


@pytest.fixture
def taskboard(tmp_path: Path) -> Path:
    """A copy of the example with local leftovers a real app folder has (.env, a dev database)."""
    app = tmp_path / "taskboard"
    shutil.copytree(EXAMPLES / "taskboard", app, ignore=shutil.ignore_patterns("node_modules", ".next"))
    (app / ".env").write_text('DATABASE_URL="file:./dev.db"\nSECRET_IN_ENV=do-not-ship\n')
    (app / "dev.db").write_bytes(b"SQLite format 3\x00")
    return app


def test_source_untouched_and_copy_transformed_for_libsql(taskboard: Path, tmp_path: Path) -> None:
    before = snapshot(taskboard)
    result = transform(taskboard, tmp_path / "work", "local-libsql")
    assert snapshot(taskboard) == before

    work = result.workdir
    assert not (work / ".env").exists() and not (work / "dev.db").exists()
    assert not (work / "preview.sqlite").exists()
    schema = (work / "prisma" / "schema.prisma").read_text()
    assert 'provider = "sqlite"' in schema and "url" not in schema.split("datasource")[1].split("}")[0]
    # everything else of the schema is kept: maps, relations, the enum
    for kept in ('@@map("tasks")', '@relation("Subtasks"', '@map("estimate_hours")', "enum Role", "Label[]"):
        assert kept in schema
    validate_schema(work / "prisma" / "schema.prisma")  # Prisma 7's own validator accepts it

    # The app's client module is not rewritten: the generated client supplies the adapter.
    assert (work / "lib" / "prisma.ts").read_text() == (taskboard / "lib" / "prisma.ts").read_text()
    patcher = (work / "launchdeck" / "patch-prisma-client.cjs").read_text()
    assert "@prisma/adapter-libsql" in patcher and "TURSO_AUTH_TOKEN" in patcher
    assert "process.env.TURSO_DATABASE_URL || process.env.DATABASE_URL" in patcher

    package = json.loads((work / "package.json").read_text())
    assert package["dependencies"]["@prisma/client"] == "7.10.0"
    assert package["dependencies"]["@prisma/adapter-libsql"] == "7.10.0"
    assert package["devDependencies"]["prisma"] == "7.10.0"
    assert "postinstall" not in package["scripts"]  # no engine download hook at install
    assert package["scripts"]["build"].startswith(
        "prisma generate && node launchdeck/patch-prisma-client.cjs && "
    )
    assert result.prisma_before == "6.19.3" and result.prisma_after == "7.10.0"
    assert result.lockfile_stale and not lockfile_in_sync(work)
    # next.config.ts is kept (renamed) and wrapped, never parsed
    assert (work / "next.config.app.ts").read_text() == (taskboard / "next.config.ts").read_text()
    assert result.standalone and 'output: "standalone"' in (work / "next.config.js").read_text()
    assert not (work / "next.config.ts").exists()
    assert "process.env.DATABASE_URL" in (work / "prisma.config.ts").read_text()
    assert json.loads(json.dumps(result.detail()))["prisma"] == "6.19.3 -> 7.10.0"


def test_postgres_target(taskboard: Path, tmp_path: Path) -> None:
    result = transform(taskboard, tmp_path / "work", "local-postgres")
    schema = (result.workdir / "prisma" / "schema.prisma").read_text()
    assert 'provider = "postgresql"' in schema
    validate_schema(result.workdir / "prisma" / "schema.prisma")
    patcher = (result.workdir / "launchdeck" / "patch-prisma-client.cjs").read_text()
    assert 'require(\\"@prisma/adapter-pg\\")' in patcher and "new PrismaPg({ connectionString })" in patcher
    package = json.loads((result.workdir / "package.json").read_text())
    assert package["dependencies"]["@prisma/adapter-pg"] == "7.10.0"


def test_prisma7_app_keeps_its_generated_client_and_lockfile(tmp_path: Path) -> None:
    before = snapshot(EXAMPLES / "shop")
    result = transform(EXAMPLES / "shop", tmp_path / "work", "turso")
    assert snapshot(EXAMPLES / "shop") == before
    assert (result.workdir / "lib" / "db.ts").read_text() == (EXAMPLES / "shop" / "lib" / "db.ts").read_text()
    assert '"generated/prisma"' in (result.workdir / "launchdeck" / "patch-prisma-client.cjs").read_text()
    # already Prisma 7 with the libSQL adapter: the committed lockfile still fits, so `npm ci`
    assert not result.lockfile_stale and lockfile_in_sync(result.workdir)


def test_working_copy_must_be_new(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "leftover").write_text("x")
    with pytest.raises(Conflict, match="not empty"):
        transform(EXAMPLES / "shop", work, "local-libsql")
    with pytest.raises(InputError, match="outside the app folder"):
        transform(EXAMPLES / "shop", EXAMPLES / "shop" / "work", "local-libsql")


def test_client_module_with_other_exports_is_copied_unchanged(tmp_path: Path) -> None:
    client = 'import { PrismaClient } from "@prisma/client";\nexport const prisma = new PrismaClient();\nexport class Repo {}\n'
    app = make_app(tmp_path / "app", {"lib/prisma.ts": client, "scripts/seed.js": "new PrismaClient()\n"})
    result = transform(app, tmp_path / "work", "local-libsql")
    assert (result.workdir / "lib" / "prisma.ts").read_text() == client
    assert (result.workdir / "scripts" / "seed.js").read_text() == "new PrismaClient()\n"


def test_read_only_app_gives_a_writable_copy(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    for path in [app, *app.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        result = transform(app, tmp_path / "work", "local-libsql")
        assert all(p.stat().st_mode & 0o200 for p in [result.workdir, *result.workdir.rglob("*")])
    finally:
        for path in [app, *app.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_symlink_out_of_the_app_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("vault key")
    app = make_app(tmp_path / "app", {})
    (app / "leak.txt").symlink_to(secret)
    result = transform(app, tmp_path / "work", "local-libsql")
    copied = result.workdir / "leak.txt"
    # dropped from the copy: the transform writes files there as the engine, and must never be led
    # out of it by a link (review H4); the secret is untouched
    assert not copied.is_symlink() and not copied.exists()
    assert secret.read_text() == "vault key"


def test_native_sqlite_driver_is_replaced_by_the_adapter(tmp_path: Path) -> None:
    client = (
        'import { PrismaClient } from "../generated/prisma/client";\n'
        'import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";\n'
        'export const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: "file:./dev.db" }) });\n'
    )
    app = make_app(tmp_path / "app", {"lib/prisma.ts": client}, prisma="7.10.0")
    package = json.loads((app / "package.json").read_text())
    package["dependencies"] |= {"@prisma/adapter-better-sqlite3": "7.10.0", "better-sqlite3": "12.4.1"}
    (app / "package.json").write_text(json.dumps(package))
    result = transform(app, tmp_path / "work", "turso")
    deps = json.loads((result.workdir / "package.json").read_text())["dependencies"]
    assert "better-sqlite3" not in deps
    assert deps["@prisma/adapter-libsql"] == "7.10.0"
    assert deps["@prisma/adapter-better-sqlite3"].startswith("file:launchdeck/shims/")  # a stand-in
    assert any("dropped better-sqlite3" in change for change in result.changes)


def test_raw_sql_sqlglot_can_rewrite_is_rewritten_in_the_copy_for_postgres(tmp_path: Path) -> None:
    route = (
        "export async function GET() {\n"
        "  const rows = await prisma.$queryRaw`SELECT group_concat(email, ',') AS names\n"
        "    FROM User WHERE createdAt > ${since}`;\n"
        "  const old = await prisma.$queryRaw`SELECT id FROM User WHERE createdAt > datetime('now', '-7 days')`;\n"
        "}\n"
    )
    app = make_app(tmp_path / "app", {"app/api/names/route.ts": route})
    on_libsql = transform(app, tmp_path / "libsql", "local-libsql")
    assert (on_libsql.workdir / "app/api/names/route.ts").read_text() == route
    result = transform(app, tmp_path / "pg", "local-postgres")
    copied = (result.workdir / "app/api/names/route.ts").read_text()
    assert 'STRING_AGG(email, \',\') AS names FROM "User" WHERE "createdAt" > ${since}`' in copied
    assert "datetime('now', '-7 days')" in copied  # sqlglot cannot rewrite it: left (preflight blocks)
    assert next(c for c in result.changes if "rewritten for PostgreSQL" in c).startswith(
        "app/api/names/route.ts:2:"
    )
    assert (app / "app/api/names/route.ts").read_text() == route


def test_workspace_packages_of_the_repository_come_along(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    (repository / "packages" / "schemas").mkdir(parents=True)
    (repository / "package.json").write_text(
        json.dumps({"name": "mono", "workspaces": ["apps/*", "packages/*"]})
    )
    (repository / "packages" / "schemas" / "package.json").write_text(json.dumps({"name": "@mono/schemas"}))
    (repository / "packages" / "schemas" / "index.ts").write_text("export type Row = { id: number };\n")
    app = make_app(repository / "apps" / "web")
    package = json.loads((app / "package.json").read_text())
    package["dependencies"]["@mono/schemas"] = "*"
    (app / "package.json").write_text(json.dumps(package))

    result = transform(app, tmp_path / "work", "local-libsql", repository=repository)
    deps = json.loads((result.workdir / "package.json").read_text())["dependencies"]
    assert deps["@mono/schemas"] == "file:launchdeck/workspace/mono__schemas"
    assert (result.workdir / "launchdeck/workspace/mono__schemas/index.ts").is_file()
    assert any("from the repository's workspace (packages/schemas)" in c for c in result.changes)


def test_pnpm_workspace_packages_come_along(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    for folder, name in (("packages/ui", "@mono/ui"), ("packages/ui-fixtures", "@mono/ui-fixtures")):
        (repository / folder).mkdir(parents=True)
        (repository / folder / "package.json").write_text(json.dumps({"name": name}))
        (repository / folder / "index.ts").write_text("export const x = 1;\n")
    (repository / "package.json").write_text(json.dumps({"name": "mono", "private": True}))
    (repository / "pnpm-workspace.yaml").write_text(
        "# pnpm's own format\npackages:\n  - 'apps/*'\n  - \"packages/*\"\n  - '!packages/*-fixtures'\n"
    )
    app = make_app(repository / "apps" / "web")
    package = json.loads((app / "package.json").read_text())
    package["dependencies"].update({"@mono/ui": "workspace:*", "@mono/ui-fixtures": "workspace:^"})
    (app / "package.json").write_text(json.dumps(package))

    result = transform(app, tmp_path / "work", "local-libsql", repository=repository)
    deps = json.loads((result.workdir / "package.json").read_text())["dependencies"]
    assert deps["@mono/ui"] == "file:launchdeck/workspace/mono__ui"
    assert (result.workdir / "launchdeck/workspace/mono__ui/index.ts").is_file()
    assert deps["@mono/ui-fixtures"] == "workspace:^"  # excluded by the "!" pattern: left as written


def test_a_broken_pnpm_workspace_file_is_no_workspace(tmp_path: Path) -> None:
    (tmp_path / "pnpm-workspace.yaml").write_text("packages: [unclosed\n")
    (tmp_path / "packages" / "ui").mkdir(parents=True)
    (tmp_path / "packages" / "ui" / "package.json").write_text(json.dumps({"name": "ui"}))
    assert workspace_packages(tmp_path) == {}


@pytest.mark.parametrize(
    ("next_version", "script", "expected"),
    [
        ("16.2.10", "next build", "next build --webpack"),  # Turbopack ignores the fonts hook
        ("^15.3.4", "next build --turbopack", "next build"),
        ("14.2.3", "next build", "next build"),
    ],
)
def test_google_fonts_build_with_webpack(
    tmp_path: Path, next_version: str, script: str, expected: str
) -> None:
    layout = (
        'import { Inter } from "next/font/google";\nexport const inter = Inter({ subsets: ["latin"] });\n'
    )
    app = make_app(tmp_path / "app", {"app/layout.tsx": layout})
    package = json.loads((app / "package.json").read_text())
    package["dependencies"]["next"] = next_version
    package["scripts"]["build"] = script
    (app / "package.json").write_text(json.dumps(package))
    result = transform(app, tmp_path / "work", "local-libsql")
    written = json.loads((result.workdir / "package.json").read_text())
    assert written["scripts"]["build"].endswith(f'google-fonts.cjs" {expected}')
    # optional: npm goes on without a package the registry lacks (the mock then falls back)
    assert written["optionalDependencies"]["@fontsource/inter"] == "^5"
    assert (app / "app/layout.tsx").read_text() == (result.workdir / "app/layout.tsx").read_text()


def test_seed_runs_in_the_build_only_when_asked(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", {"prisma/seed.ts": "console.log('seeding');\n"})
    plain = transform(app, tmp_path / "plain", "local-libsql")
    assert "seed" not in json.loads((plain.workdir / "package.json").read_text())["scripts"]["build"]
    seeded = transform(app, tmp_path / "seeded", "local-libsql", seed=True)
    build = json.loads((seeded.workdir / "package.json").read_text())["scripts"]["build"]
    assert "&& npx --yes tsx prisma/seed.ts && next build" in build  # before pages prerender
    bare = make_app(tmp_path / "bare")
    with pytest.raises(InputError, match="has no seed script"):
        transform(bare, tmp_path / "bare-work", "local-libsql", seed=True)
