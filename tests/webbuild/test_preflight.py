"""Preflight findings on crafted snippets and on the example apps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.webbuild import Finding, blocking, preflight
from tests.webbuild.apps import EXAMPLES, make_app


def _only(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def test_sqlite_datetime_blocks_postgres_but_not_libsql(tmp_path: Path) -> None:
    route = (
        'import prisma from "@/lib/prisma";\n'
        "\n"
        "export async function GET() {\n"
        "  const recent = await prisma.$queryRaw`\n"
        "    SELECT id FROM \"User\" WHERE \"createdAt\" > datetime('now', '-7 days')`;\n"
        "  return Response.json(recent);\n"
        "}\n"
    )
    app = make_app(tmp_path, {"app/api/recent/route.ts": route})

    on_postgres = _only(preflight(app, "local-postgres"), "raw-sql-dialect")
    assert len(on_postgres) == 1
    finding = on_postgres[0]
    assert (finding.file, finding.line, finding.severity) == ("app/api/recent/route.ts", 4, "blocking")
    assert "datetime() is SQLite-only" in finding.message
    assert "INTERVAL '7 days'" in finding.message  # what to write instead
    assert "sqlglot cannot rewrite datetime()" in finding.message

    assert _only(preflight(app, "local-libsql"), "raw-sql-dialect") == []
    assert _only(preflight(app, "turso"), "raw-sql-dialect") == []


def test_mixed_case_names_and_group_concat_get_sqlglot_rewrite(tmp_path: Path) -> None:
    route = (
        "export async function GET() {\n"
        "  const rows = await prisma.$queryRaw<{ names: string }[]>`SELECT group_concat(email, ',') AS names\n"
        "    FROM User WHERE createdAt > ${since}`;\n"
        "}\n"
    )
    app = make_app(tmp_path, {"app/api/names/route.ts": route})

    # sqlglot rewrites all of it: a warning (the working copy runs the rewrite), not a refusal
    assert _only(preflight(app, "neon"), "raw-sql-dialect") == []
    [finding] = _only(preflight(app, "neon"), "raw-sql-rewritten")
    assert finding.line == 2 and finding.severity == "warning"
    assert "mixed-case name(s) User, createdAt" in finding.message  # the names PostgreSQL would fold
    # sqlglot's rewrite: STRING_AGG, quoted names, and the template's ${since} kept in place
    assert 'STRING_AGG(email, \',\') AS names FROM "User" WHERE "createdAt" > ${since}' in finding.message


def test_unsafe_query_placeholders_and_dynamic_sql(tmp_path: Path) -> None:
    code = (
        "export async function find(email: string, sql: string) {\n"
        '  await prisma.$queryRawUnsafe("SELECT id FROM users WHERE email = ? AND ifnull(name, \'\') <> ?", email, "x");\n'
        "  await prisma.$executeRawUnsafe(sql);\n"
        "}\n"
    )
    app = make_app(tmp_path, {"lib/queries.ts": code})

    findings = preflight(app, "postgresql")
    [dialect] = _only(findings, "raw-sql-rewritten")  # sqlglot rewrites all of it: the copy runs that
    assert (dialect.line, dialect.severity) == (2, "warning")
    assert "$1, $2" in dialect.message
    assert "COALESCE(name, '') <> $2" in dialect.message
    [dynamic] = _only(findings, "raw-sql-dynamic")
    assert (dynamic.line, dynamic.severity) == (3, "warning")


def test_portable_raw_sql_is_not_reported(tmp_path: Path) -> None:
    code = 'export const ping = () => prisma.$queryRaw`SELECT 1`;\nexport const n = () => prisma.$queryRaw`SELECT COUNT(*) FROM "users" WHERE id = ${1}`;\n'
    app = make_app(tmp_path, {"lib/ping.ts": code})
    assert [f for f in preflight(app, "local-postgres") if f.code.startswith("raw-sql")] == []


def test_unparseable_raw_sql_is_a_warning(tmp_path: Path) -> None:
    app = make_app(
        tmp_path, {"lib/bad.ts": "export const q = () => prisma.$queryRaw`SELEC FROM WHERE ((`;\n"}
    )
    [finding] = _only(preflight(app, "local-postgres"), "raw-sql-unparsed")
    assert finding.severity == "warning" and finding.file == "lib/bad.ts"


def test_google_font_is_served_from_fontsource_not_refused(tmp_path: Path) -> None:
    layout = (
        'import type { ReactNode } from "react";\nimport { Inter, Geist_Mono } from "next/font/google";\n'
    )
    app = make_app(tmp_path, {"app/layout.tsx": layout})
    [finding] = _only(preflight(app, "local-libsql"), "build-network-font")
    assert (finding.file, finding.line, finding.severity) == ("app/layout.tsx", 2, "warning")
    assert "@fontsource/inter, @fontsource/geist-mono" in finding.message
    assert blocking(preflight(app, "local-libsql")) == []


def test_prerendered_page_reading_the_database(tmp_path: Path) -> None:
    static_page = 'import prisma from "@/lib/prisma";\nexport default async function P() { return prisma.user.count(); }\n'
    via_helper = 'import { countUsers } from "../../lib/stats";\nexport default async function P() { return countUsers(); }\n'
    helper = 'import { prisma } from "./prisma";\nexport const countUsers = () => prisma.user.count();\n'
    dynamic_page = 'import prisma from "@/lib/prisma";\nexport const dynamic = "force-dynamic";\nexport default async function P() { return prisma.user.count(); }\n'
    segment_page = 'import prisma from "@/lib/prisma";\nexport default async function P() { return prisma.user.count(); }\n'
    app = make_app(
        tmp_path,
        {
            "app/page.tsx": static_page,
            "app/stats/page.tsx": via_helper,
            "lib/stats.ts": helper,
            "app/live/page.tsx": dynamic_page,
            "app/users/[id]/page.tsx": segment_page,
        },
    )
    findings = _only(preflight(app, "local-libsql"), "build-time-database")
    assert sorted(f.file for f in findings) == ["app/page.tsx", "app/stats/page.tsx"]
    assert all(f.severity == "warning" and "force-dynamic" in f.message for f in findings)


def test_prisma_versions(tmp_path: Path) -> None:
    six = make_app(tmp_path / "six", {"lib/audit.ts": "prisma.$use(async (params, next) => next(params));\n"})
    findings = preflight(six, "local-libsql")
    assert _only(findings, "prisma-native-engine")[0].severity == "warning"
    [middleware] = _only(findings, "prisma-middleware")
    assert (middleware.file, middleware.line, middleware.severity) == ("lib/audit.ts", 1, "blocking")

    four = make_app(tmp_path / "four", prisma="4.16.2")
    assert [f.code for f in blocking(preflight(four, "local-libsql"))] == ["prisma-too-old"]

    seven = make_app(tmp_path / "seven", prisma="7.10.0")
    assert preflight(seven, "local-libsql") == [
        f for f in preflight(seven, "local-libsql") if f.code == "no-lockfile"
    ]


def test_client_modules_that_export_other_things_are_not_refused(tmp_path: Path) -> None:
    """Services, helpers and types beside the client, seeds and scripts: nothing is rewritten, nothing
    blocks (the generated client supplies the adapter)."""
    client = (
        'import { PrismaClient } from "@prisma/client";\n'
        "export const prisma = new PrismaClient();\n"
        "export function slugify(s: string) { return s.toLowerCase(); }\n"
        "export type Repo = { id: number };\n"
    )
    seed = 'const { PrismaClient } = require("@prisma/client");\nconst p = new PrismaClient();\n'
    script = (
        'import { PrismaClient } from "@prisma/client";\nnew PrismaClient().$use(async (a, n) => n(a));\n'
    )
    app = make_app(tmp_path, {"lib/prisma.ts": client, "prisma/seed.js": seed, "scripts/backfill.ts": script})
    findings = preflight(app, "local-libsql")
    assert blocking(findings) == []
    assert _only(findings, "prisma-client-module") == []
    [middleware] = _only(findings, "prisma-middleware")  # in scripts/: the build never reaches it
    assert (middleware.file, middleware.severity) == ("scripts/backfill.ts", "warning")


def test_non_utf8_file_is_skipped_with_a_note(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "lib" / "legacy.js").write_bytes(b"// caf\xa2 \xff\n export const x = 1;\n")
    findings = preflight(app, "local-postgres")  # raw SQL and prerender scans read every source
    [note] = _only(findings, "not-utf8")
    assert (note.file, note.severity) == ("lib/legacy.js", "warning")
    assert blocking(findings) == []


def test_app_without_schema_blocks(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "prisma" / "schema.prisma").unlink()
    assert [f.code for f in blocking(preflight(app, "local-libsql"))] == ["prisma-no-schema"]


@pytest.mark.parametrize("app", ["shop", "taskboard"])
@pytest.mark.parametrize("target", ["local-libsql", "turso", "local-postgres", "neon"])
def test_example_apps_have_no_blocking_findings(app: str, target: str) -> None:
    assert blocking(preflight(EXAMPLES / app, target)) == []


def test_unknown_target_says_what_to_use() -> None:
    with pytest.raises(InputError, match="local-libsql, turso, local-postgres, neon"):
        preflight(EXAMPLES / "shop", "mysql")


def test_boolean_compared_with_a_number_is_rewritten_for_postgres(tmp_path: Path) -> None:
    schema = (
        'datasource db {\n  provider = "sqlite"\n}\n\n'
        'model Task {\n  id   Int     @id\n  done Boolean @default(false) @map("is_done")\n\n  @@map("tasks")\n}\n'
    )
    code = 'export const open = () => prisma.$queryRaw`SELECT id FROM "tasks" WHERE "is_done" = 0 AND id <> 1`;\n'
    app = make_app(tmp_path, {"prisma/schema.prisma": schema, "lib/open.ts": code})
    [finding] = _only(preflight(app, "local-postgres"), "raw-sql-rewritten")
    assert finding.severity == "warning"
    assert "compares a Boolean column with a number" in finding.message
    assert 'WHERE "is_done" = FALSE AND id <> 1' in finding.message  # only the Boolean comparison changes
    assert _only(preflight(app, "local-libsql"), "raw-sql-dialect") == []


def test_prerendered_page_fetching_a_url_at_build(tmp_path: Path) -> None:
    page = 'export default async function P() {\n  const r = await fetch("https://api.example.com/rates");\n  return r.status;\n}\n'
    live = 'export const dynamic = "force-dynamic";\n' + page
    app = make_app(tmp_path, {"app/rates/page.tsx": page, "app/live/page.tsx": live})
    [finding] = _only(preflight(app, "local-libsql"), "build-network-fetch")
    assert (finding.file, finding.line) == ("app/rates/page.tsx", 2)
    assert "https://api.example.com/rates" in finding.message


def test_a_service_that_needs_keys_blocks_when_the_deployment_lacks_them(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    package = json.loads((app / "package.json").read_text())
    package["dependencies"]["@clerk/nextjs"] = "^5.2.4"
    (app / "package.json").write_text(json.dumps(package))
    [unknown] = _only(preflight(app, "local-libsql"), "service-keys")
    assert unknown.severity == "warning"
    [lacking] = _only(preflight(app, "local-libsql", env_names=["CLERK_SECRET_KEY"]), "service-keys")
    assert lacking.severity == "blocking" and "--env NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY=..." in lacking.message
    assert "CLERK_SECRET_KEY=" not in lacking.message
    keys = ["CLERK_SECRET_KEY", "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY"]
    assert _only(preflight(app, "local-libsql", env_names=keys), "service-keys") == []
