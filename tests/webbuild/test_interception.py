"""The generated parts of a working copy, run under real Node on small stand-in packages: the Prisma client
interception, the Google Fonts CSS served from @fontsource, the next.config wrapper; and the checks verify
runs when an app has no health route."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from engine.errors import TerminalError
from engine.webbuild.appcheck import database_round_trip, declares_route, page_problem, schema_tables
from engine.webbuild.fonts import (
    fallback_findings,
    fontsource_package,
    google_font_families,
    write_font_mock,
)
from engine.webbuild.nextconfig import wrap_next_config
from engine.webbuild.prismawrap import generator_outputs, write_patch_script
from engine.webbuild.targets import parse_target
from pipelines.web import holds_no_tables


def node(cwd: Path, script: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["node", "-e", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# What `prisma generate` writes for prisma-client-js, reduced to the lines the interception touches.
GENERATED_JS = """function getPrismaClient(config) {
  return class PrismaClient { constructor(options) { this.options = options; } $extends() { return this; } };
}
const config = {};
const PrismaClient = getPrismaClient(config)
exports.PrismaClient = PrismaClient
"""
ADAPTER = """class PrismaLibSql {
  constructor(config) { this.config = config; this.provider = "sqlite"; this.adapterName = "@prisma/adapter-libsql"; }
}
exports.PrismaLibSql = PrismaLibSql;
"""


def test_generated_client_supplies_the_deployment_adapter_however_it_is_built(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "node_modules/.prisma/client/index.js": GENERATED_JS,
            "node_modules/@prisma/client/index.js": "module.exports = require('.prisma/client/index.js');\n",
            "node_modules/@prisma/adapter-libsql/index.js": ADAPTER,
            "lib/generated/prisma/index.js": GENERATED_JS,
        },
    )
    schema = (
        'generator client {\n  provider = "prisma-client-js"\n  output   = "../lib/generated/prisma"\n}\n'
    )
    outputs = generator_outputs(schema, tmp_path / "prisma", tmp_path)
    assert outputs == ["lib/generated/prisma"]
    command = write_patch_script(tmp_path, parse_target("local-libsql"), outputs)
    for _ in range(2):  # a rebuild of the same copy patches nothing twice
        run = subprocess.run(command.split(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0 and "2 generated Prisma client file(s)" in run.stdout, run.stderr
    script = """
const { PrismaClient } = require("@prisma/client");
const { PrismaClient: Custom } = require("./lib/generated/prisma");
const { PrismaLibSql } = require("@prisma/adapter-libsql");
const own = new PrismaLibSql({ url: "file:own.db" });
const cases = {
  bare: new PrismaClient(),
  options: new PrismaClient({ log: ["query"], datasources: { db: { url: "file:dev.db" } }, datasourceUrl: "x" }),
  own: new PrismaClient({ adapter: own }),
  d1: new PrismaClient({ adapter: { provider: "sqlite", adapterName: "@prisma/adapter-d1" } }),
  custom: new Custom().$extends({}),
};
const out = {};
for (const [k, v] of Object.entries(cases)) {
  out[k] = { keys: Object.keys(v.options).sort(), url: v.options.adapter.config.url, same: v.options.adapter === own };
}
out.isSubclass = cases.bare instanceof PrismaClient;
console.log(JSON.stringify(out));
"""
    seen = json.loads(node(tmp_path, script, {"DATABASE_URL": "file:/srv/app.db"}))
    assert seen["bare"] == {"keys": ["adapter"], "url": "file:/srv/app.db", "same": False}
    assert seen["options"] == {"keys": ["adapter", "log"], "url": "file:/srv/app.db", "same": False}
    # The app's own adapter is replaced too: it reads the app's idea of the database (the shop example's
    # falls back to file:./preview.sqlite when DATABASE_URL is unset, as it is on Turso).
    assert seen["own"] == {"keys": ["adapter"], "url": "file:/srv/app.db", "same": False}
    assert seen["d1"]["url"] == "file:/srv/app.db"  # D1 cannot run here: replaced
    assert seen["custom"]["url"] == "file:/srv/app.db"  # a custom generator output is patched too
    assert seen["isSubclass"] is True


def test_prisma_client_generator_typescript_output_is_patched(tmp_path: Path) -> None:
    client_ts = (
        'import * as $Class from "./internal/class"\n'
        "export const PrismaClient = $Class.getPrismaClientClass()\n"
        "export type PrismaClient = $Class.PrismaClient\n"
    )
    write(tmp_path, {"generated/prisma/client.ts": client_ts})
    command = write_patch_script(tmp_path, parse_target("local-postgres"), ["generated/prisma"])
    run = subprocess.run(command.split(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    patched = (tmp_path / "generated/prisma/client.ts").read_text()
    assert patched.startswith("// @ts-nocheck\n")
    assert (
        "export const PrismaClient = __launchdeckWrap(__launchdeckBase) as typeof __launchdeckBase" in patched
    )
    assert "export type PrismaClient = $Class.PrismaClient" in patched
    assert 'require("@prisma/adapter-pg")' in patched


def test_no_generated_client_fails_the_build_step(tmp_path: Path) -> None:
    command = write_patch_script(tmp_path, parse_target("local-libsql"), [])
    run = subprocess.run(command.split(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "no generated Prisma client found" in run.stderr


def test_google_fonts_css_comes_from_fontsource(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/layout.tsx": 'import { Inter, Geist_Mono as Mono } from "next/font/google";\n',
            "node_modules/@fontsource/inter/metadata.json": json.dumps(
                {"subsets": ["latin", "cyrillic"], "weights": [100, 400, 700, 900]}
            ),
            "node_modules/@fontsource/inter/unicode.json": json.dumps({"latin": "U+0000-00FF"}),
            "node_modules/@fontsource/inter/files/inter-latin-400-normal.woff2": "w400",
            "node_modules/@fontsource/inter/files/inter-latin-700-normal.woff2": "w700",
            "node_modules/@fontsource/inter/files/inter-latin-700-italic.woff2": "i700",
            "node_modules/@fontsource/inter/files/inter-cyrillic-400-normal.woff2": "c400",
        },
    )
    assert google_font_families(tmp_path) == ["Geist Mono", "Inter"]
    assert fontsource_package("Geist Mono") == "@fontsource/geist-mono"
    prefix = write_font_mock(tmp_path)
    assert prefix.startswith("NEXT_FONT_GOOGLE_MOCKED_RESPONSES=")
    css = node(
        tmp_path,
        "const m = require('./launchdeck/google-fonts.cjs');"
        "console.log(JSON.stringify([m['https://fonts.googleapis.com/css2?family=Inter:wght@300..800&display=swap'],"
        "m['https://fonts.googleapis.com/css2?family=Inter:ital,wght@1,700&display=optional'], m.then]));",
    )
    ranged, italic, then = json.loads(css)
    files = tmp_path / "node_modules/@fontsource/inter/files"
    # the weights in range that the package has, every subset it has files for, absolute paths
    assert f"src: url({files}/inter-latin-400-normal.woff2)" in ranged
    assert f"src: url({files}/inter-latin-700-normal.woff2)" in ranged
    assert f"src: url({files}/inter-cyrillic-400-normal.woff2)" in ranged
    assert "100-normal" not in ranged and "/* latin */" in ranged and "unicode-range: U+0000-00FF" in ranged
    assert "font-style: italic" in italic and "font-display: optional" in italic and "700-italic" in italic
    assert then is None  # not a thenable: `require` of the module works as Next expects
    assert fallback_findings(tmp_path) == []  # every family so far had its package


def test_a_google_font_without_a_fontsource_package_falls_back_with_a_warning(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/page.tsx": "export default function P() { return null; }\n",
            "app/layout.tsx": 'import "./globals.css";\nimport { Lusitana as Brand } from "next/font/google";\n',
        },
    )
    write_font_mock(tmp_path)
    url = "https://fonts.googleapis.com/css2?family=Lusitana:wght@400;700&display=swap"
    css = node(
        tmp_path, f"const m = require('./launchdeck/google-fonts.cjs'); m['{url}']; console.log(m['{url}']);"
    )
    # one @font-face naming the family (Next refuses CSS without one) and no file to download
    assert "font-family: 'Lusitana';" in css and "url(" not in css
    [finding] = fallback_findings(tmp_path)
    assert (finding.file, finding.line, finding.severity) == ("app/layout.tsx", 2, "warning")
    assert "Lusitana" in finding.message and "@fontsource/lusitana" in finding.message
    assert "next/font/local" in finding.message
    # what the build recorded counts only for families the app imports, and never through a link
    (tmp_path / "launchdeck/font-fallbacks.txt").write_text("Lusitana\nComic Neue\n")
    assert [f.message for f in fallback_findings(tmp_path)] == [finding.message]
    (tmp_path / "launchdeck/font-fallbacks.txt").unlink()
    (tmp_path / "elsewhere.txt").write_text("Lusitana\n")
    (tmp_path / "launchdeck/font-fallbacks.txt").symlink_to(tmp_path / "elsewhere.txt")
    assert fallback_findings(tmp_path) == []


@pytest.mark.parametrize(
    ("files", "next_version", "esm"),
    [
        # a function config (CommonJS) on Next 14
        ({"next.config.js": "module.exports = (phase) => ({ reactStrictMode: true, output: 'export', phase });\n"}, "14.2.3", False),
        # a plugin-wrapped ESM config on Next 15
        ({"next.config.mjs": "const withX = (c) => ({ ...c, x: 1 });\nexport default withX({ images: { unoptimized: true }, serverExternalPackages: ['sharp'] });\n"}, "15.5.3", False),
        # an ESM app ("type": "module") with a plain object
        ({"next.config.js": "export default { poweredByHeader: false };\n"}, "16.1.1", True),
    ],
)  # fmt: skip
def test_next_config_is_wrapped_not_parsed(
    tmp_path: Path, files: dict[str, str], next_version: str, esm: bool
) -> None:
    package = {"name": "app", **({"type": "module"} if esm else {})}
    write(
        tmp_path,
        {
            **files,
            "package.json": json.dumps(package),
            "node_modules/next/package.json": json.dumps({"name": "next", "version": next_version}),
        },
    )
    original = next(iter(files))
    note = wrap_next_config(tmp_path)
    assert "wraps it" in note
    renamed = original.replace("next.config", "next.config.app")
    assert (tmp_path / renamed).read_text() == files[original]  # the app's file, byte for byte
    loader = (
        "import(require('node:url').pathToFileURL(require('node:path').resolve('next.config.js')).href)"
        ".then(async (m) => { const c = await m.default('phase-production-build', {}); console.log(JSON.stringify(c)); })"
    )
    config = json.loads(node(tmp_path, loader))
    assert config["output"] == "standalone"
    assert config["typescript"]["ignoreBuildErrors"] is True
    if next_version.startswith("14"):
        assert config["reactStrictMode"] is True and config["phase"] == "phase-production-build"
        assert "libsql" in config["experimental"]["serverComponentsExternalPackages"]
        assert config["eslint"]["ignoreDuringBuilds"] is True
    elif next_version.startswith("15"):
        assert config["x"] == 1 and config["images"] == {"unoptimized": True}
        assert (
            config["serverExternalPackages"][0] == "sharp"
            and "@prisma/adapter-pg" in config["serverExternalPackages"]
        )
    else:
        assert config["poweredByHeader"] is False and "eslint" not in config


def test_schema_tables_honour_maps() -> None:
    schema = 'model User {\n  id Int @id\n  @@map("users")\n}\n\nmodel Post {\n  id Int @id\n}\n'
    assert schema_tables(schema) == ["users", "Post"]


def test_page_problem() -> None:
    assert page_problem(200, "<html><body>Notes</body></html>") is None
    assert page_problem(307, "") is None  # a login wall
    assert page_problem(404, "This page could not be found.") is None
    assert "500" in (page_problem(500, "boom") or "")
    error_page = "<html><h2>Application error: a server-side exception has occurred</h2></html>"
    assert "error page" in (page_problem(200, error_page) or "")


def test_verify_asks_for_a_health_route_only_when_the_build_has_one(tmp_path: Path) -> None:
    server = tmp_path / ".next" / "server"
    assert declares_route(tmp_path, "/api/health") is None  # no manifests: ask the app
    write(
        server,
        {
            "app-paths-manifest.json": json.dumps(
                {"/page": "app/page.js", "/sign-in/[[...sign-in]]/page": "x"}
            )
        },
    )
    assert declares_route(tmp_path, "/api/health") is False  # the Clerk app of the corpus: no such route
    write(
        server,
        {"pages-manifest.json": json.dumps({"/_app": "pages/_app.js", "/api/health": "pages/api/health.js"})},
    )
    assert declares_route(tmp_path, "/api/health") is True
    write(
        server,
        {
            "pages-manifest.json": "{}",
            "app-paths-manifest.json": json.dumps({"/(ops)/api/health/route": "r"}),
        },
    )
    assert declares_route(tmp_path, "/api/health") is True
    write(server, {"app-paths-manifest.json": json.dumps({"/api/[...path]/route": "r"})})
    assert declares_route(tmp_path, "/api/health") is None  # a catch-all might answer it


def test_database_round_trip_on_a_libsql_file(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    assert "1/1 schema tables" in database_round_trip({"DATABASE_URL": f"file:{path}"}, ["users"])
    with pytest.raises(TerminalError, match="lacks the schema's tables Post"):
        database_round_trip({"DATABASE_URL": f"file:{path}"}, ["users", "Post"])


def test_preview_without_tables_is_treated_as_empty(tmp_path: Path) -> None:
    empty, full, dump = tmp_path / "empty.db", tmp_path / "full.db", tmp_path / "dump.sql"
    with sqlite3.connect(empty) as conn:
        conn.execute("CREATE TABLE _prisma_migrations (id TEXT)")
    with sqlite3.connect(full) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    dump.write_text("CREATE TABLE users (id INTEGER);\n")
    assert holds_no_tables(empty) and not holds_no_tables(full) and not holds_no_tables(dump)
