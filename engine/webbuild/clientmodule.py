"""The app's Prisma client module (lib/prisma.ts, lib/db.ts, ...), rewritten to build its driver adapter
from the deployment's environment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.webbuild.prismawrap import adapter_parts
from engine.webbuild.targets import Target

_IMPORT_CLIENT = re.compile(
    r"""import\s*\{[^}]*\bPrismaClient\b[^}]*\}\s*from\s*["']([^"']+)["']"""
    r"""|\{[^}]*\bPrismaClient\b[^}]*\}\s*=\s*require\(\s*["']([^"']+)["']\s*\)"""
)
_EXPORT_VALUE = re.compile(r"^export\s+(?:const|let|var)\s+(\w+)", re.MULTILINE)
_EXPORT_DEFAULT = re.compile(r"^export\s+default\b", re.MULTILINE)
_EXPORT_LIST = re.compile(r"^export\s*\{([^}]*)\}\s*;?\s*$", re.MULTILINE)
_EXPORT_OTHER = re.compile(r"^export\s+(?:async\s+)?(?:function|class|enum)\s+(\w+)", re.MULTILINE)
_REEXPORT = re.compile(
    r"^export\s+(?:type\s+)?(?:\*|\{[^}]*\})\s+from\s+[\"'][^\"']+[\"'];?\s*$", re.MULTILINE
)
_EXPORT_TYPE = re.compile(r"^export\s+(?:type|interface)\s+\w+", re.MULTILINE)


@dataclass
class ClientModule:
    path: Path
    import_source: str  # where PrismaClient comes from: "@prisma/client" or the generated client
    names: list[str] = field(default_factory=list)  # named exports holding the client
    has_default: bool = False
    reexports: list[str] = field(default_factory=list)  # `export * from ...` lines, kept verbatim
    unsupported: list[str] = field(default_factory=list)  # exports a rewrite would lose

    @property
    def rewritable(self) -> bool:
        return not self.unsupported and (bool(self.names) or self.has_default)


def analyse(path: Path) -> ClientModule:
    text = path.read_text(encoding="utf-8")
    match = _IMPORT_CLIENT.search(text)
    source = (match.group(1) or match.group(2)) if match else "@prisma/client"
    module = ClientModule(path=path, import_source=source)
    module.names = _EXPORT_VALUE.findall(text)
    module.has_default = bool(_EXPORT_DEFAULT.search(text))
    for listed in _EXPORT_LIST.findall(text):
        for item in listed.split(","):
            item = item.strip()
            if not item:
                continue
            exported = item.split(" as ")[-1].strip()
            if exported == "default":
                module.has_default = True
            else:
                module.names.append(exported)
    module.reexports = [m.group(0).strip() for m in _REEXPORT.finditer(text)]
    module.unsupported = _EXPORT_OTHER.findall(text) + [m.group(0) for m in _EXPORT_TYPE.finditer(text)]
    return module


def _adapter_lines(target: Target) -> tuple[str, str]:
    package, cls, read_url, argument = adapter_parts(target)
    return f'import {{ {cls} }} from "{package}";', f"{read_url}  const adapter = new {cls}({argument});\n"


# workerd ties a socket to the request that opened it: a PostgreSQL client is made per request (keyed on
# OpenNext's per-request context) and the exported name forwards to it, so the app's code is unchanged.
_PER_REQUEST_CLIENT = [
    "const clients = new WeakMap<object, PrismaClient>();",
    "function current(): PrismaClient {",
    "  const { ctx } = getCloudflareContext();",
    "  let client = clients.get(ctx);",
    "  if (!client) {",
    "    client = createPrismaClient();",
    "    clients.set(ctx, client);",
    "  }",
    "  return client;",
    "}",
    "const perRequest = new Proxy({} as PrismaClient, {",
    "  get(_target, property) {",
    "    const client = current();",
    "    const value = Reflect.get(client, property);",
    '    return typeof value === "function" ? value.bind(client) : value;',
    "  },",
    "});",
]


def render(module: ClientModule, target: Target, *, runtime: str = "node") -> str:
    """The replacement module: same exports, client built with the target's driver adapter."""
    adapter_import, construct = _adapter_lines(target)
    if runtime == "workerd":  # the web flavour speaks Hrana over fetch: no native module on workerd
        adapter_import = adapter_import.replace('"@prisma/adapter-libsql"', '"@prisma/adapter-libsql/web"')
    names = list(dict.fromkeys(module.names)) or ["prisma"]
    primary = names[0]
    per_request = runtime == "workerd" and target.family == "postgresql"
    lines = [
        f"// Rewritten by Launchdeck for the {target.name} deployment: Prisma 7 with the driver adapter",
        f"// {target.adapter_package}, connection settings read from the environment (no engine binaries).",
        f'import {{ PrismaClient }} from "{module.import_source}";',
        adapter_import,
        *(['import { getCloudflareContext } from "@opennextjs/cloudflare";'] if per_request else []),
        "",
        "function createPrismaClient(): PrismaClient {",
        construct.rstrip("\n"),
        "  return new PrismaClient({ adapter });",
        "}",
        "",
    ]
    if per_request:
        lines += [*_PER_REQUEST_CLIENT, f"export const {primary}: PrismaClient = perRequest;"]
    else:
        lines += [
            "// One client per server process, however many bundles import this module.",
            "const globalForPrisma = globalThis as unknown as { __launchdeckPrisma?: PrismaClient };",
            f"export const {primary}: PrismaClient = (globalForPrisma.__launchdeckPrisma ??= createPrismaClient());",
        ]
    lines += [f"export const {name} = {primary};" for name in names[1:]]
    if module.has_default:
        lines.append(f"export default {primary};")
    lines += module.reexports
    text = "\n".join(lines) + "\n"
    if module.path.suffix in (".js", ".mjs", ".jsx"):
        text = text.replace("(): PrismaClient {", "() {").replace(": PrismaClient =", " =")
        text = text.replace(" as unknown as { __launchdeckPrisma?: PrismaClient }", "")
    return text
