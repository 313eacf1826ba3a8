"""The one interception point for the Prisma client: no module of the app is rewritten.

After `prisma generate`, a script written into the working copy patches every client the app can import
(`@prisma/client` through `node_modules/.prisma/client`, a generator's custom `output`, the
`prisma-client` generator's `client.ts`) so that its `PrismaClient` is a subclass that supplies the
deployment's driver adapter when the caller gave none or another one (D1 on a Cloudflare-only app,
better-sqlite3 whose native build needs downloads, a SQLite adapter on PostgreSQL). The `globalThis` singleton, `new PrismaClient()`
anywhere, `log` and other options, `$extends`, `import` and `require`, JS and TS all keep working;
`datasources` / `datasourceUrl` (gone in Prisma 7) are dropped in favour of the deployment's URL.

script = write_patch_script(workdir, target, outputs)     # -> "node launchdeck/patch-prisma-client.cjs"
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.dbpath.transform import blocks, properties
from engine.webbuild.targets import Target

SCRIPT = "launchdeck/patch-prisma-client.cjs"
MARKER = "launchdeck: PrismaClient with the deployment's driver adapter"


def generator_outputs(schema_text: str, schema_dir: Path, workdir: Path) -> list[str]:
    """Custom generator outputs, relative to the working copy (only those inside it)."""
    outputs = []
    for generator in (b for b in blocks(schema_text) if b.kind == "generator"):
        output = next((p.value for p in properties(schema_text, generator) if p.key == "output"), None)
        if output:
            path = (schema_dir / output).resolve()
            if path.is_relative_to(workdir.resolve()):
                outputs.append(path.relative_to(workdir.resolve()).as_posix())
    return outputs


def adapter_parts(target: Target) -> tuple[str, str, str, str]:
    """The deployment's driver adapter as JavaScript pieces: (package, class, the lines that read its URL
    from the environment, the constructor's argument). The generated-client wrapper here and the client
    module written for Workers (``clientmodule``) both build the adapter from these."""
    if target.family == "libsql":
        return (
            "@prisma/adapter-libsql",
            "PrismaLibSql",
            "  // Turso: libsql://... with an auth token; local: a file: URL.\n"
            "  const url = process.env.TURSO_DATABASE_URL || process.env.DATABASE_URL;\n"
            '  if (!url) throw new Error("Set TURSO_DATABASE_URL (and TURSO_AUTH_TOKEN) or DATABASE_URL");\n',
            "{ url, authToken: process.env.TURSO_AUTH_TOKEN || undefined }",
        )
    return (
        "@prisma/adapter-pg",
        "PrismaPg",
        "  const connectionString = process.env.DATABASE_URL;\n"
        '  if (!connectionString) throw new Error("Set DATABASE_URL to the PostgreSQL connection string");\n',
        "{ connectionString }",
    )


def _adapter_code(target: Target) -> str:
    package, cls, read_url, argument = adapter_parts(target)
    return f'{read_url}  const {{ {cls} }} = require("{package}");\n  return new {cls}({argument});\n'


def wrapper_js(target: Target) -> str:
    """JavaScript appended to a generated client: ``__launchdeckWrap(Base)`` -> the subclass. Its client always
    gets the deployment's adapter: the database is the deployment's choice, whatever adapter the app built."""
    return (
        f"\n// {MARKER} ({target.adapter_package}).\n"
        "function __launchdeckAdapter() {\n" + _adapter_code(target) + "}\n"
        "function __launchdeckOptions(options) {\n"
        "  const given = options || {};\n"
        "  const { datasources, datasourceUrl, adapter: _ignored, accelerateUrl, ...rest } = given;\n"
        "  return { ...rest, adapter: __launchdeckAdapter() };\n"
        "}\n"
        "function __launchdeckWrap(Base) {\n"
        "  if (Base.__launchdeck) return Base;\n"
        "  const Wrapped = class PrismaClient extends Base {\n"
        "    constructor(options, ...more) { super(__launchdeckOptions(options), ...more); }\n"
        "  };\n"
        "  Wrapped.__launchdeck = true;\n"
        "  return Wrapped;\n"
        "}\n"
    )


def _patcher(target: Target, outputs: list[str]) -> str:
    """The Node script run after `prisma generate` (in the sandbox, from the working copy)."""
    return (
        f"// Written by Launchdeck: {MARKER}.\n"
        '"use strict";\n'
        'const fs = require("node:fs");\n'
        'const path = require("node:path");\n'
        f"const WRAP = {json.dumps(wrapper_js(target))};\n"
        f"const MARKER = {json.dumps(MARKER)};\n"
        f"const OUTPUTS = {json.dumps(['node_modules/.prisma/client', *outputs])};\n"
        "let patched = 0;\n"
        "function patchJs(file) {\n"
        "  let text = fs.readFileSync(file, 'utf8');\n"
        "  if (text.includes(MARKER)) { patched += 1; return; }\n"
        "  const next = text.replace(/const PrismaClient = getPrismaClient\\(config\\)/,\n"
        "    'const PrismaClient = __launchdeckWrap(getPrismaClient(config))');\n"
        "  if (next === text) return;\n"
        "  fs.writeFileSync(file, next + WRAP);\n"
        "  patched += 1;\n"
        "}\n"
        "function patchTs(file) {\n"
        "  // prisma-client generator: `export const PrismaClient = $Class.getPrismaClientClass()`\n"
        "  let text = fs.readFileSync(file, 'utf8');\n"
        "  if (text.includes(MARKER)) { patched += 1; return; }\n"
        "  const re = /export const PrismaClient = (\\$Class\\.getPrismaClientClass\\([^)]*\\))/;\n"
        "  if (!re.test(text)) return;\n"
        "  text = text.replace(re, (_m, call) => `const __launchdeckBase = ${call}\nexport const PrismaClient = __launchdeckWrap(__launchdeckBase) as typeof __launchdeckBase`);\n"
        "  fs.writeFileSync(file, '// @ts-nocheck\\n' + text + WRAP);\n"
        "  patched += 1;\n"
        "}\n"
        "for (const dir of OUTPUTS) {\n"
        "  if (!fs.existsSync(dir)) continue;\n"
        "  for (const name of ['index.js', 'client.js', 'default.js']) {\n"
        "    const file = path.join(dir, name);\n"
        "    if (fs.existsSync(file)) patchJs(file);\n"
        "  }\n"
        "  for (const name of ['client.ts', 'client.mts']) {\n"
        "    const file = path.join(dir, name);\n"
        "    if (fs.existsSync(file)) patchTs(file);\n"
        "  }\n"
        "}\n"
        "console.log(`launchdeck: ${patched} generated Prisma client file(s) supply the deployment's adapter`);\n"
        "if (patched === 0) { console.error('launchdeck: no generated Prisma client found after prisma generate'); process.exit(1); }\n"
    )


def write_patch_script(workdir: Path, target: Target, outputs: list[str]) -> str:
    """Writes the patcher into the working copy; returns the command the build runs after generate."""
    path = workdir / SCRIPT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_patcher(target, outputs), encoding="utf-8")
    return f"node {SCRIPT}"
