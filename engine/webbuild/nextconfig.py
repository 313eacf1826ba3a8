"""next.config in every form, never parsed: the app's file is kept (renamed beside itself) and a generated
next.config.js imports it, calls it when it is a function (plugins return one too), and merges what
Launchdeck needs: a standalone server, the database drivers kept out of the bundle, and a build that does
not stop at type or lint errors the app's authors never saw in `next dev`.

note = wrap_next_config(workdir)
"""

from __future__ import annotations

import json
from pathlib import Path

# Next.js looks for these, in this order.
CONFIG_NAMES = ("next.config.js", "next.config.mjs", "next.config.ts", "next.config.cjs", "next.config.mts")
_EXTERNAL = ["@prisma/adapter-libsql", "@libsql/client", "libsql", "@prisma/adapter-pg", "pg"]

_WRAPPER = """// Written by Launchdeck: the app's own config ({app}), with what the deployment needs merged in.
{header}
const EXTERNAL = {external};

async function appConfig(phase, context) {{
{load}
  let config = loaded && loaded.__esModule && "default" in loaded ? loaded.default : loaded;
  if (config && typeof config === "object" && "default" in config && Object.keys(config).length === 1) config = config.default;
  if (typeof config === "function") config = await config(phase, context);
  return config || {{}};
}}

function withLaunchdeck(config) {{
  const major = Number(String(requireFrom("next/package.json").version).split(".")[0]);
  const merged = {{ ...config, output: "standalone" }};
  merged.typescript = {{ ...(config.typescript || {{}}), ignoreBuildErrors: true }};
  if (major < 16) merged.eslint = {{ ...(config.eslint || {{}}), ignoreDuringBuilds: true }};
  if (major >= 15) {{
    merged.serverExternalPackages = [...new Set([...(config.serverExternalPackages || []), ...EXTERNAL])];
  }} else {{
    const experimental = {{ ...(config.experimental || {{}}) }};
    experimental.serverComponentsExternalPackages = [
      ...new Set([...(experimental.serverComponentsExternalPackages || []), ...EXTERNAL]),
    ];
    merged.experimental = experimental;
  }}
  return merged;
}}

{export} async function launchdeckConfig(phase, context) {{
  return withLaunchdeck(await appConfig(phase, context));
}}
{trailer}
"""


def _load_code(app_name: str) -> str:
    if app_name.endswith((".ts", ".mts")):
        # Next.js 15+ transpiles next.config.ts itself; the same transpiler loads the renamed file.
        return (
            "  let loaded;\n"
            "  try {\n"
            '    const { transpileConfig } = requireFrom("next/dist/build/next-config-ts/transpile-config");\n'
            f"    loaded = await transpileConfig({{ nextConfigPath: joinHere({json.dumps(app_name)}), "
            f"configFileName: {json.dumps(app_name)}, cwd: here }});\n"
            "  } catch (error) {\n"
            '    const ts = requireFrom("typescript");\n'
            f'    const source = readFileSync(joinHere({json.dumps(app_name)}), "utf8");\n'
            "    const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, "
            "target: ts.ScriptTarget.ES2020, esModuleInterop: true } }).outputText;\n"
            f"    const file = joinHere({json.dumps(app_name.rsplit('.', 1)[0] + '.cjs')});\n"
            "    writeFileSync(file, out);\n"
            "    loaded = requireFrom(file);\n"
            "  }"
        )
    return f"  const loaded = await import(pathToFileURL(joinHere({json.dumps(app_name)})).href);"


def wrap_next_config(workdir: Path) -> str:
    """Renames the app's next.config.* to next.config.app.* and writes the wrapper; returns a note."""
    package = json.loads((workdir / "package.json").read_text(encoding="utf-8"))
    esm = package.get("type") == "module"
    existing = [name for name in CONFIG_NAMES if (workdir / name).is_file()]
    header_esm = (
        'import { createRequire } from "node:module";\n'
        'import { readFileSync, writeFileSync } from "node:fs";\n'
        'import { dirname, join } from "node:path";\n'
        'import { fileURLToPath, pathToFileURL } from "node:url";\n'
        "const here = dirname(fileURLToPath(import.meta.url));\n"
        "const requireFrom = createRequire(import.meta.url);\n"
        "const joinHere = (name) => join(here, name);"
    )
    header_cjs = (
        'const { readFileSync, writeFileSync } = require("node:fs");\n'
        'const { join } = require("node:path");\n'
        'const { pathToFileURL } = require("node:url");\n'
        "const here = __dirname;\n"
        "const requireFrom = require;\n"
        "const joinHere = (name) => join(here, name);"
    )
    if existing:
        original = existing[0]
        for name in existing[1:]:  # Next.js would never have read these
            (workdir / name).unlink()
        renamed = original.replace("next.config", "next.config.app", 1)
        (workdir / original).rename(workdir / renamed)
        load = _load_code(renamed)
        note = f"{original} kept as {renamed}; next.config.js wraps it (standalone output, drivers external)"
    else:
        renamed = "(none)"
        load = "  const loaded = {};"
        note = "next.config.js written (standalone output, drivers external)"
    text = _WRAPPER.format(
        app=renamed,
        header=header_esm if esm else header_cjs,
        external=json.dumps(_EXTERNAL),
        load=load,
        export="export default" if esm else "module.exports = ",
        trailer="",
    )
    if not esm:
        text = text.replace("module.exports =  async function", "module.exports = async function")
    (workdir / "next.config.js").write_text(text, encoding="utf-8")
    return note
