"""The isolated, transformed working copy that gets built and deployed.

The app's own folder is only read. The copy gets: the Prisma schema for the target (Prisma 7: provider
only, URLs in prisma.config.ts), the client module rewritten to build its driver adapter from the
environment, Prisma 5/6 moved to Prisma 7 (no engine binaries at build or run time), the adapter
package, a production package.json and Next.js standalone output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.dbpath.transform import rewrite_properties, transform_schema
from engine.errors import Conflict, InputError
from engine.webbuild import clientmodule
from engine.webbuild.appinfo import (
    client_modules,
    dependency_spec,
    find_schema,
    prisma_versions,
    read_package_json,
    source_files,
)
from engine.webbuild.fonts import (
    FONTSOURCE_VERSION,
    fontsource_package,
    google_font_families,
    write_font_mock,
)
from engine.webbuild.nextconfig import wrap_next_config
from engine.webbuild.prismawrap import generator_outputs, write_patch_script
from engine.webbuild.rawsql import rewrite_raw_sql
from engine.webbuild.targets import Target, parse_target

# The Prisma 7 release apps are moved to (tested with both example apps).
PRISMA_7_VERSION = "7.10.0"

# Never copied: dependencies and outputs (rebuilt), version control, local env files and the preview
# database (the data goes to the production database, not into the deployment).
_EXCLUDED_NAMES = {"node_modules", ".next", ".git", ".vercel", ".turbo", "out"}
_EXCLUDED_PATTERNS = (
    "*.sqlite",
    "*.sqlite3",
    "*.db",
    "*.db-journal",
    "*.db-wal",
    "*.db-shm",
    "*.tsbuildinfo",
)


@dataclass
class TransformResult:
    workdir: Path
    target: Target
    prisma_before: str | None
    prisma_after: str
    lockfile_stale: bool  # package.json changed: the build must run `npm install`, not `npm ci`
    standalone: bool  # next.config asks for `output: "standalone"`
    changes: list[str] = field(default_factory=list)

    def detail(self) -> dict[str, object]:
        """JSON-ready summary for the deployment journal."""
        return {
            "target": self.target.name,
            "prisma": f"{self.prisma_before} -> {self.prisma_after}",
            "lockfile_stale": self.lockfile_stale,
            "standalone": self.standalone,
            "changes": self.changes,
        }


def _ignore(directory: str, names: list[str]) -> set[str]:
    ignored = {name for name in names if name in _EXCLUDED_NAMES}
    ignored |= set(shutil.ignore_patterns(*_EXCLUDED_PATTERNS)(directory, names))
    ignored |= {n for n in names if n == ".env" or (n.startswith(".env.") and n != ".env.example")}
    return ignored


def copy_app(app_dir: Path, workdir: Path) -> None:
    if workdir.exists() and any(workdir.iterdir()):
        raise Conflict(f"working copy {workdir} already exists and is not empty")
    workdir.parent.mkdir(parents=True, exist_ok=True)
    # symlinks=True: a link pointing outside the app is copied as a link, never followed.
    shutil.copytree(app_dir, workdir, ignore=_ignore, symlinks=True, dirs_exist_ok=True)
    # The transform then writes files in the copy as the engine: a link that leaves the copy
    # (prisma.config.ts -> ../../../vault.key) would be written through (review H4).
    from engine.webbuild.build import drop_escaping_links

    drop_escaping_links(workdir)
    # The app may arrive read-only (an unpacked archive, a checked-out snapshot); the build writes its
    # lockfile and outputs into the copy.
    for directory, dirnames, filenames in os.walk(workdir):
        for name in [*dirnames, *filenames]:
            path = Path(directory) / name
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | stat.S_IWUSR | (stat.S_IXUSR if path.is_dir() else 0))
    workdir.chmod(workdir.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)


# Prisma 7 has no native engines (binary targets and engine types mean nothing any more), and this build
# is Node's: a Workers runtime the app chose for Cloudflare goes too.
NODE_BUILD_DROPS = frozenset({"binaryTargets", "engineType", "runtime"})


def _prisma_config(schema_relative: str) -> str:
    # Only `prisma generate` runs in the build and needs no URL; migrations run from Launchdeck.
    return (
        "// Written by Launchdeck: the connection URL comes from the deployment's environment.\n"
        'import { defineConfig } from "prisma/config";\n\n'
        "export default defineConfig({\n"
        f"  schema: {json.dumps(schema_relative)},\n"
        "  datasource: {\n"
        '    url: process.env.DATABASE_URL ?? process.env.TURSO_DATABASE_URL ?? "",\n'
        "  },\n"
        "});\n"
    )


def _set_dependency(
    package: dict[str, Any], name: str, version: str, *, dev: bool = False, optional: bool = False
) -> None:
    """Pin ``name`` where the app lists it, else add it to dependencies (devDependencies when ``dev``,
    optionalDependencies when ``optional``: an install goes on without a package the registry lacks)."""
    for section in ("dependencies", "devDependencies"):
        if name in (package.get(section) or {}):
            package[section][name] = version
            return
    kind = "optionalDependencies" if optional else "devDependencies" if dev else "dependencies"
    section = package.setdefault(kind, {})
    section[name] = version
    package[kind] = dict(sorted(section.items()))


def _major(spec: str | None) -> int | None:
    match = re.search(r"(\d+)", spec or "")
    return int(match.group(1)) if match else None


def seed_command(app_dir: Path, package: dict[str, Any]) -> str | None:
    """How the app seeds its database (package.json "prisma.seed", else prisma/seed.*), run with node
    or tsx; None when it has no seed."""
    configured = (
        (package.get("prisma") or {}).get("seed") if isinstance(package.get("prisma"), dict) else None
    )
    candidates = re.findall(r"[\w./-]+\.(?:[cm]?[jt]s)\b", configured) if isinstance(configured, str) else []
    candidates += [f"prisma/seed.{suffix}" for suffix in ("ts", "js", "mjs", "cjs", "mts")]
    for candidate in candidates:
        path = (app_dir / candidate).resolve()
        if path.is_file() and path.is_relative_to(app_dir.resolve()):
            relative = path.relative_to(app_dir.resolve()).as_posix()
            runner = "npx --yes tsx" if path.suffix in (".ts", ".mts", ".cts") else "node"
            return f"{runner} {relative}"
    return None


def _production_package(
    package: dict[str, Any],
    target: Target,
    prisma_version: str,
    after_generate: str,
    build_env: str = "",
    seed: str | None = None,
) -> dict[str, Any]:
    package = json.loads(json.dumps(package))
    package["private"] = True
    _set_dependency(package, "@prisma/client", prisma_version)
    _set_dependency(package, "prisma", prisma_version, dev=True)
    _set_dependency(package, target.adapter_package, prisma_version)
    scripts = package.setdefault("scripts", {})
    # `prisma generate` runs once, in the build, not as an install hook.
    if "prisma generate" in scripts.get("postinstall", ""):
        del scripts["postinstall"]
    build_script = re.sub(
        r"(npx\s+)?prisma generate[^&;]*(&&|;)\s*", "", scripts.get("build") or "next build"
    )
    if build_env:
        # Turbopack does not read Next's mocked Google Fonts responses: the fonts need webpack (the
        # default up to Next 15; Next 16 builds with Turbopack unless told --webpack).
        build_script = re.sub(r"\s--turbo(pack)?\b", "", build_script)
        next_major = _major(dependency_spec(package, "next"))
        bundler = " --webpack" if next_major is None or next_major >= 16 else ""
        build_script = re.sub(r"\bnext build\b", f"{build_env} next build{bundler}", build_script)
    seeding = f"{seed} && " if seed else ""  # against the new database, before pages prerender
    scripts["build"] = f"prisma generate && {after_generate} && {seeding}{build_script}"
    scripts["start"] = "next start"
    return package


# Drivers the client module used before the rewrite. better-sqlite3 compiles a native module at install
# (its prebuilt binaries come from outside the npm registry), so it must go when nothing imports it.
_REPLACED_DRIVERS = (
    "@prisma/adapter-better-sqlite3",
    "better-sqlite3",
    "@prisma/adapter-libsql",
    "@libsql/client",
    "@prisma/adapter-pg",
    "pg",
    "sqlite3",
    "@prisma/adapter-d1",
)


# Adapters the app may construct itself that cannot run here (D1 needs a Workers binding; better-sqlite3
# compiles a native module whose binaries come from outside the registry). The app's import still
# resolves, to a stand-in whose adapter the generated client replaces with the deployment's.
_SHIMMED_ADAPTERS = {
    "@prisma/adapter-better-sqlite3": ("PrismaBetterSqlite3", "PrismaBetterSQLite3"),
    "@prisma/adapter-d1": ("PrismaD1", "PrismaD1HTTP"),
}


def _shim(workdir: Path, name: str, classes: tuple[str, ...]) -> str:
    folder = workdir / "launchdeck" / "shims" / name.replace("/", "__").lstrip("@")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(
        json.dumps({"name": name, "version": "0.0.0-launchdeck", "main": "index.js", "types": "index.d.ts"}),
        encoding="utf-8",
    )
    body = "".join(
        f"class {cls} {{ constructor() {{ this.provider = 'sqlite'; this.adapterName = 'launchdeck-stand-in'; }} }}\n"
        f"exports.{cls} = {cls};\n"
        for cls in classes
    )
    (folder / "index.js").write_text(
        f"// Launchdeck stand-in for {name}: the deployment's adapter replaces it.\n{body}", encoding="utf-8"
    )
    (folder / "index.d.ts").write_text(
        "".join(f"export declare class {cls} {{ constructor(...args: any[]); }}\n" for cls in classes),
        encoding="utf-8",
    )
    return "file:" + folder.relative_to(workdir).as_posix()


# An app written for Cloudflare (OpenNext) hosted on Node: its bindings come from getCloudflareContext(),
# which only exists on workerd. On Node it answers with empty bindings (the D1 adapter made from one is a
# stand-in too, replaced by the deployment's adapter).
_OPENNEXT_ON_NODE = """// Launchdeck stand-in for @opennextjs/cloudflare on a Node host: no Workers bindings here.
const env = new Proxy({}, { get: (_t, key) => (typeof key === "string" ? process.env[key] ?? {} : undefined) });
const context = { env, cf: undefined, ctx: { waitUntil() {}, passThroughOnException() {} } };
function getCloudflareContext(options) { return options && options.async ? Promise.resolve(context) : context; }
function initOpenNextCloudflareForDev() {}
function defineCloudflareConfig(config) { return config || {}; }
module.exports = { getCloudflareContext, initOpenNextCloudflareForDev, defineCloudflareConfig };
"""
_OPENNEXT_TYPES = (
    "export declare function getCloudflareContext(options?: any): any;\n"
    "export declare function initOpenNextCloudflareForDev(options?: any): void;\n"
    "export declare function defineCloudflareConfig(config?: any): any;\n"
)


def _opennext_on_node(workdir: Path, package: dict[str, Any]) -> list[str]:
    name = "@opennextjs/cloudflare"
    if not any(name in (package.get(section) or {}) for section in ("dependencies", "devDependencies")):
        return []
    folder = workdir / "launchdeck" / "shims" / "opennextjs__cloudflare"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(
        json.dumps({"name": name, "version": "0.0.0-launchdeck", "main": "index.js", "types": "index.d.ts"}),
        encoding="utf-8",
    )
    (folder / "index.js").write_text(_OPENNEXT_ON_NODE, encoding="utf-8")
    (folder / "index.d.ts").write_text(_OPENNEXT_TYPES, encoding="utf-8")
    _set_dependency(package, name, "file:" + folder.relative_to(workdir).as_posix())
    return [
        f"package.json: {name} stands in on the Node host (getCloudflareContext() has no Workers bindings)"
    ]


def _unused_drivers(
    workdir: Path, package: dict[str, Any], target: Target, *, stand_ins: bool = True
) -> list[str]:
    from engine.webbuild.preflight import outside_build

    keep = {target.adapter_package}
    sources = [
        path.read_text(encoding="utf-8", errors="replace")
        for path in source_files(workdir)
        if not outside_build(path.relative_to(workdir).as_posix())
        and path.relative_to(workdir).parts[0] != "launchdeck"
    ]
    changes = []
    for name in _REPLACED_DRIVERS:
        if name in keep:
            continue
        imported = re.compile(rf"""["']{re.escape(name)}(/[^"']*)?["']""")
        if any(imported.search(text) for text in sources):
            if stand_ins and name in _SHIMMED_ADAPTERS:
                _set_dependency(package, name, _shim(workdir, name, _SHIMMED_ADAPTERS[name]))
                changes.append(
                    f"package.json: {name} stands in for the app's import (the deployment's "
                    f"{target.adapter_package} replaces its adapter)"
                )
            continue
        for section in ("dependencies", "devDependencies"):
            if name in (package.get(section) or {}):
                del package[section][name]
                changes.append(f"package.json: dropped {name} (not imported by the app's built code)")
    return changes


def _workspace_patterns(repository: Path) -> list[str]:
    """Folder globs of the repository's workspace: package.json "workspaces" (npm, yarn) and
    pnpm-workspace.yaml "packages" (pnpm). Exclusions ("!pattern") keep their "!"."""
    patterns: list[object] = []
    try:
        root = json.loads((repository / "package.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        root = None
    listed = root.get("workspaces") if isinstance(root, dict) else None
    if isinstance(listed, dict):
        listed = listed.get("packages")
    if isinstance(listed, list):
        patterns += listed
    try:
        pnpm = yaml.safe_load((repository / "pnpm-workspace.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        pnpm = None
    listed = pnpm.get("packages") if isinstance(pnpm, dict) else None
    if isinstance(listed, list):
        patterns += listed
    return [p.rstrip("/") for p in patterns if isinstance(p, str) and p.strip("!/")]


def workspace_packages(repository: Path) -> dict[str, Path]:
    """The repository's workspace packages (npm/yarn "workspaces", pnpm-workspace.yaml), by name."""
    patterns = _workspace_patterns(repository)
    base = repository.resolve()
    excluded: set[Path] = set()
    for pattern in patterns:
        if pattern.startswith("!") and ".." not in pattern and not pattern[1:].startswith("/"):
            excluded.update(folder.resolve() for folder in repository.glob(pattern[1:]))
    found: dict[str, Path] = {}
    for pattern in patterns:
        if pattern.startswith(("!", "/")) or ".." in pattern:
            continue
        for folder in sorted(repository.glob(pattern)):
            resolved = folder.resolve()
            if not resolved.is_relative_to(base) or folder.is_symlink() or resolved in excluded:
                continue
            try:
                name = json.loads((folder / "package.json").read_text(encoding="utf-8")).get("name")
            except (OSError, json.JSONDecodeError, AttributeError):
                continue
            if isinstance(name, str):
                found[name] = folder
    return found


def _vendor_workspace_packages(
    repository: Path, app_dir: Path, workdir: Path, package: dict[str, Any]
) -> list[str]:
    """Workspace packages the app depends on, copied into the working copy as `file:` dependencies
    (the registry does not have them)."""
    available = workspace_packages(repository)
    changes = []
    for section in ("dependencies", "devDependencies"):
        for name in sorted(package.get(section) or {}):
            folder = available.get(name)
            if folder is None or folder.resolve() == app_dir.resolve():
                continue
            target = workdir / "launchdeck" / "workspace" / name.replace("/", "__").lstrip("@")
            copy_app(folder, target)
            package[section][name] = "file:" + target.relative_to(workdir).as_posix()
            changes.append(
                f"package.json: {name} from the repository's workspace ({folder.relative_to(repository)})"
            )
    return changes


def workers_client_modules(app_dir: Path) -> list[clientmodule.ClientModule]:
    modules = [clientmodule.analyse(path) for path in client_modules(app_dir)]
    if not modules:
        raise InputError(f"no file in {app_dir} constructs `new PrismaClient(...)`: nothing to connect")
    for module in modules:
        if not module.rewritable:
            raise InputError(
                f"{module.path.relative_to(app_dir)} exports {', '.join(module.unsupported)} besides the "
                "Prisma client: move those to another file so the client module can be rewritten"
            )
    return modules


def transform(
    app_dir: Path | str,
    workdir: Path | str,
    target: str | Target,
    *,
    runtime: str = "node",
    seed: bool = False,
    repository: Path | str | None = None,
) -> TransformResult:
    """Copies ``app_dir`` to ``workdir`` (new or empty) and transforms the copy for ``target``.

    ``repository``: the repository ``app_dir`` lies in (``--root``): workspace packages come from it.
    ``seed``: the build runs the app's seed script against the new database (``launchdeck deploy --seed``).
    ``runtime="workerd"``: for Cloudflare Workers, built with OpenNext (see ``engine.webbuild.workers``).
    Raises InputError when the app cannot be transformed (no Prisma schema, a client module that also
    exports other things); preflight reports the same problems earlier with file and line.
    """
    if runtime not in ("node", "workerd"):
        raise InputError(f"unknown runtime {runtime!r}: node or workerd")
    app_dir, workdir, target = Path(app_dir).resolve(), Path(workdir).resolve(), parse_target(target)
    if not app_dir.is_dir():
        raise InputError(f"app folder {app_dir} does not exist")
    if workdir == app_dir or workdir.is_relative_to(app_dir):
        raise InputError("the working copy must be outside the app folder")
    package = read_package_json(app_dir)
    versions = prisma_versions(app_dir)
    schema_path = find_schema(app_dir)
    if schema_path is None:
        raise InputError(f"{app_dir} has no Prisma schema (prisma/schema.prisma)")
    # Cloudflare Workers still get the client module rewritten (a per-request client on workerd).
    modules = workers_client_modules(app_dir) if runtime == "workerd" else []
    copy_app(app_dir, workdir)
    changes = [
        f"copied {app_dir.name} to an isolated working copy (no node_modules, .env or preview database)"
    ]

    major = versions.major
    prisma_after = (
        versions.client if (major is not None and major >= 7 and versions.client) else PRISMA_7_VERSION
    )
    if major is None or major < 7:
        changes.append(f"Prisma {versions.client or 'unknown'} -> {prisma_after} with driver adapters")

    schema_relative = schema_path.relative_to(app_dir).as_posix()
    copied_schema = workdir / schema_relative
    original_schema = copied_schema.read_text(encoding="utf-8")
    new_schema = rewrite_properties(
        transform_schema(original_schema, target.family), "generator", drop=NODE_BUILD_DROPS
    )
    if runtime == "workerd":
        from engine.webbuild.workers import schema_for_workers

        new_schema = schema_for_workers(new_schema, target)
    copied_schema.write_text(new_schema, encoding="utf-8")
    # Prisma 7 validates it in the build (`prisma generate`, with file and line): not twice.
    changes.append(f"{schema_relative}: provider {target.prisma_provider}, URLs moved to prisma.config.ts")

    for stale in ("prisma.config.js", "prisma.config.mjs"):
        (workdir / stale).unlink(missing_ok=True)
    (workdir / "prisma.config.ts").write_text(_prisma_config(schema_relative), encoding="utf-8")

    # The one interception point: the generated client supplies the deployment's adapter (no module of
    # the app is rewritten; scripts/, seeds and tests are never touched).
    if runtime == "workerd":
        after_generate = "true"
        for module in modules:
            relative = module.path.relative_to(app_dir)
            (workdir / relative).write_text(
                clientmodule.render(module, target, runtime=runtime), encoding="utf-8"
            )
            changes.append(
                f"{relative.as_posix()}: PrismaClient built with {target.adapter_package} from env"
            )
    else:
        outputs = generator_outputs(new_schema, copied_schema.parent, workdir)
        after_generate = write_patch_script(workdir, target, outputs)
        changes.append(
            f"after prisma generate: the generated client ({', '.join(['@prisma/client', *outputs])}) "
            f"supplies {target.adapter_package} from the environment when the app gives no adapter"
        )
    families = google_font_families(workdir)
    font_env = write_font_mock(workdir) if families else ""
    if families:
        changes.append(
            "next/font/google served from the npm registry: "
            + ", ".join(f"{family} ({fontsource_package(family)})" for family in families)
        )

    seeding = seed_command(app_dir, package) if seed else None
    if seed and seeding is None:
        raise InputError(
            f'--seed: {app_dir.name} has no seed script (package.json "prisma.seed" or prisma/seed.ts|js)'
        )
    if seeding:
        changes.append(f"the build runs the seed `{seeding}` against the new database (--seed)")
    if runtime == "node":
        changes += rewrite_raw_sql(workdir, target)
    new_package = _production_package(package, target, prisma_after, after_generate, font_env, seeding)
    for family in families:
        _set_dependency(new_package, fontsource_package(family), FONTSOURCE_VERSION, optional=True)
    changes += _unused_drivers(workdir, new_package, target, stand_ins=runtime == "node")
    if repository is not None:
        changes += _vendor_workspace_packages(Path(repository).resolve(), app_dir, workdir, new_package)
    if runtime == "node":
        changes += _opennext_on_node(workdir, new_package)
    lockfile_stale = (
        any(
            new_package.get(section) != package.get(section)
            for section in ("dependencies", "devDependencies", "optionalDependencies")
        )
        or not (app_dir / "package-lock.json").is_file()
    )
    (workdir / "package.json").write_text(json.dumps(new_package, indent=2) + "\n", encoding="utf-8")
    changes.append(f"package.json: {target.adapter_package}@{prisma_after}, build runs prisma generate")

    if runtime == "workerd":
        from engine.webbuild.workers import prepare_for_workers

        changes += prepare_for_workers(workdir, new_package)
        (workdir / "package.json").write_text(json.dumps(new_package, indent=2) + "\n", encoding="utf-8")
        standalone = False
    else:
        changes.append(wrap_next_config(workdir))
        standalone = True
    os.chmod(workdir, 0o755)
    return TransformResult(
        workdir=workdir,
        target=target,
        prisma_before=versions.client,
        prisma_after=prisma_after,
        lockfile_stale=lockfile_stale,
        standalone=standalone,
        changes=changes,
    )
