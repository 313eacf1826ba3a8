"""The working copy for Cloudflare Workers: built by OpenNext (`@opennextjs/cloudflare`), Cloudflare's
current route for Next.js with server rendering, and bundled exactly as ``wrangler deploy`` would upload it.

Versions: OpenNext 1.20.17 is the first release that builds Next 16.4, and wrangler 4.86 is the newest that
runs on Node 20 (later ones require Node 22). OpenNext 1.20.17 declares ``wrangler ^4.148`` but only uses
APIs 4.86 has (checked by building and running the example apps), so the copy installs with
``legacy-peer-deps``. The compatibility date is the one of wrangler 4.86's workerd runtime.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from engine.dbpath.transform import block_property, rewrite_properties
from engine.errors import InputError
from engine.webbuild.nextconfig import CONFIG_NAMES
from engine.webbuild.targets import Target

OPENNEXT_VERSION = "1.20.17"
WRANGLER_VERSION = "4.86.0"
COMPATIBILITY_DATE = "2026-04-26"
COMPATIBILITY_FLAGS = ["nodejs_compat"]
BUILD_SCRIPT = "build:worker"
DRY_RUN_DIR = ".launchdeck-worker"
# Turbopack traces Prisma's wasm loader with a pattern that matches the whole project, and OpenNext bundles
# every traced .wasm into the Worker: 53 MiB instead of 9 MiB for the shop. Build tools stay out.
TRACING_EXCLUDES = [
    "node_modules/prisma/**", "node_modules/@prisma/dev/**", "node_modules/@prisma/studio-core/**",
    "node_modules/@prisma/engines/**", "node_modules/@prisma/fetch-engine/**",
    "node_modules/@prisma/get-platform/**", "node_modules/@electric-sql/**", "node_modules/blake3-wasm/**",
    "node_modules/wrangler/**", "node_modules/miniflare/**", "node_modules/workerd/**",
    "node_modules/@cloudflare/**", "node_modules/esbuild/**", "node_modules/@esbuild/**",
    "node_modules/@opennextjs/**", "node_modules/cloudflare/**", "node_modules/@aws-sdk/**",
    "node_modules/@smithy/**", "node_modules/typescript/**", "node_modules/@img/**", "node_modules/sharp/**",
    "node_modules/effect/**", "node_modules/next/dist/compiled/@vercel/og/**",
    "node_modules/next/dist/compiled/@mswjs/**", "node_modules/next/dist/compiled/source-map08/**",
]  # fmt: skip
# The Workers path still adds one key to a plain config object (OpenNext reads the app's own config).
CONFIG_OBJECT = re.compile(
    r"(const\s+\w+\s*(?::\s*NextConfig\s*)?=\s*\{|module\.exports\s*=\s*\{|export\s+default\s*\{)"
)


def schema_for_workers(schema_text: str, target: Target) -> str:
    """The generator builds the client for workerd (`runtime = "cloudflare"`, Prisma 7's `prisma-client`).
    Turso is reached over HTTP (the adapter's web flavour), PostgreSQL over workerd's sockets, with one
    client per request (see ``clientmodule``)."""
    generator = block_property(schema_text, "generator", "provider")
    if generator is None or generator.value != "prisma-client":
        raise InputError(
            'Cloudflare Workers need Prisma\'s "prisma-client" generator (with an output folder); this app uses '
            '"prisma-client-js": change the generator, or deploy with --host vercel'
        )
    return rewrite_properties(
        schema_text,
        "generator",
        drop=frozenset({"runtime"}),
        add={"runtime": '"cloudflare"'},
        only=lambda props: props.get("provider") == "prisma-client",
    )


def prepare_for_workers(workdir: Path, package: dict[str, Any]) -> list[str]:
    """OpenNext and wrangler in the copy, their configuration, and the build script. ``package`` is
    changed in place (the caller writes it)."""
    dev = package.setdefault("devDependencies", {})
    dev["@opennextjs/cloudflare"], dev["wrangler"] = OPENNEXT_VERSION, WRANGLER_VERSION
    package["devDependencies"] = dict(sorted(dev.items()))
    # OpenNext runs the app's own `build` script (prisma generate && next build), then bundles the
    # Worker; the dry run writes the modules a deploy uploads, which Launchdeck uploads itself.
    package["scripts"][BUILD_SCRIPT] = (
        f"opennextjs-cloudflare build && wrangler deploy --dry-run --outdir {DRY_RUN_DIR}"
    )
    (workdir / ".npmrc").write_text("legacy-peer-deps=true\n", encoding="utf-8")
    (workdir / "open-next.config.ts").write_text(
        'import { defineCloudflareConfig } from "@opennextjs/cloudflare";\n\n'
        "// No incremental cache: the pages of these apps are rendered per request.\n"
        "export default defineCloudflareConfig({});\n",
        encoding="utf-8",
    )
    wrangler = {
        "name": "app",
        "main": ".open-next/worker.js",
        "compatibility_date": COMPATIBILITY_DATE,
        "compatibility_flags": COMPATIBILITY_FLAGS,
        "assets": {"directory": ".open-next/assets", "binding": "ASSETS"},
    }
    (workdir / "wrangler.jsonc").write_text(json.dumps(wrangler, indent=2) + "\n", encoding="utf-8")
    return [
        f"package.json: @opennextjs/cloudflare {OPENNEXT_VERSION}, wrangler {WRANGLER_VERSION}, "
        f"`npm run {BUILD_SCRIPT}` builds the Worker",
        "wrangler.jsonc and open-next.config.ts written (nodejs_compat, assets bound as ASSETS)",
        _exclude_tooling_from_trace(workdir),
    ]


def _exclude_tooling_from_trace(workdir: Path) -> str:
    excludes = f"outputFileTracingExcludes: {{ '*': {json.dumps(TRACING_EXCLUDES)} }},"
    for name in CONFIG_NAMES:
        path = workdir / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if "outputFileTracingExcludes" in text:
            return f"{name} already sets outputFileTracingExcludes"
        match = CONFIG_OBJECT.search(text)
        if match is None:
            raise InputError(f"{name} has no plain config object to add outputFileTracingExcludes to")
        path.write_text(text[: match.end()] + " " + excludes + text[match.end() :], encoding="utf-8")
        return f"{name}: build tools excluded from the server trace (keeps the Worker small)"
    (workdir / "next.config.mjs").write_text(f"export default {{ {excludes} }};\n", encoding="utf-8")
    return "next.config.mjs written: build tools excluded from the server trace"


def worker_bundle(workdir: Path, destination: Path) -> Path:
    """What a Worker deploy uploads, in the layout ``CloudflareWorkers.stage`` takes: ``worker.json``
    (main module, compatibility), ``modules/`` (the bundled Worker and its wasm) and ``assets/``."""
    built, assets = workdir / DRY_RUN_DIR, workdir / ".open-next" / "assets"
    if not (built / "worker.js").is_file() or not assets.is_dir():
        raise InputError(f"{workdir} has no built Worker: run `npm run {BUILD_SCRIPT}` first")
    from engine.webbuild.build import drop_escaping_links, real_folder

    for root in (".open-next", ".open-next/assets", str(DRY_RUN_DIR)):
        real_folder(workdir, root)  # a linked root would be followed by the copies below (C4)
    drop_escaping_links(assets)  # the build is untrusted: no link may lead this copy to the machine's files
    if destination.exists():
        shutil.rmtree(destination)
    modules = destination / "modules"
    modules.mkdir(parents=True)
    for path in built.iterdir():
        if path.is_file() and path.suffix not in (".map", ".md"):
            shutil.copy2(path, modules / path.name)
    shutil.copytree(assets, destination / "assets", symlinks=False)
    meta = {
        "main_module": "worker.js",
        "compatibility_date": COMPATIBILITY_DATE,
        "compatibility_flags": COMPATIBILITY_FLAGS,
    }
    (destination / "worker.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return destination
