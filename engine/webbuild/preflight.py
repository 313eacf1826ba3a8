"""Preflight: everything that would make a deploy fail, found before anything is provisioned.

Each finding names the file and line and says what to do. A ``blocking`` finding stops the deploy.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from engine.dbpath.transform import block_property
from engine.errors import InputError
from engine.webbuild.appinfo import (
    client_modules,
    find_schema,
    line_of,
    prisma_versions,
    read_package_json,
    source_files,
    undecodable_files,
)
from engine.webbuild.buildtime import network_findings, prerender_findings
from engine.webbuild.findings import Finding
from engine.webbuild.rawsql import raw_sql_findings
from engine.webbuild.targets import Target, parse_target

# Packages whose install step downloads a binary from somewhere other than the npm registry.
_DOWNLOADS_AT_INSTALL = {
    "puppeteer": "set PUPPETEER_SKIP_DOWNLOAD=1 and use puppeteer-core, or drop it from the server build",
    "cypress": "move it to a test-only setup; set CYPRESS_INSTALL_BINARY=0",
    "electron": "a desktop dependency in a web app: remove it from package.json",
    "playwright": "move it to devDependencies of a test setup; browsers are not downloaded in the build",
}
_MIDDLEWARE = re.compile(r"\.\$use\s*\(")


_OUTSIDE_BUILD = re.compile(
    r"^(scripts|tests?|__tests__|e2e|cypress|prisma)/|\.(test|spec)\.[cm]?[jt]sx?$|(^|/)seed\.[cm]?[jt]s$"
)


def outside_build(relative: str) -> bool:
    """Files the build never reaches (scripts, seeds, tests): never blocking."""
    return bool(_OUTSIDE_BUILD.search(relative))


def blocking(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.severity == "blocking"]


def _prisma_findings(app_dir: Path, target: Target) -> list[Finding]:
    findings: list[Finding] = []
    versions = prisma_versions(app_dir)
    schema = find_schema(app_dir)
    if schema is None:
        return [
            Finding(
                "prisma/schema.prisma",
                None,
                "blocking",
                "prisma-no-schema",
                'no Prisma schema found: add prisma/schema.prisma (or set "prisma.schema" in package.json)',
            )
        ]
    schema_file = schema.relative_to(app_dir).as_posix()
    schema_text = schema.read_text(encoding="utf-8")
    provider = block_property(schema_text, "datasource", "provider")
    if provider is None:
        findings.append(
            Finding(
                schema_file,
                None,
                "blocking",
                "prisma-no-datasource",
                'the schema has no datasource block with a provider: add one (provider = "sqlite")',
            )
        )
    elif provider.value not in ("sqlite", "postgresql"):
        findings.append(
            Finding(
                schema_file,
                line_of(schema_text, provider.offset),
                "blocking",
                "prisma-provider",
                f"datasource provider {provider.value!r} cannot move to "
                f"{target.name}: Launchdeck deploys sqlite (preview) and postgresql schemas",
            )
        )
    elif provider.value == "postgresql" and target.family == "libsql":
        findings.append(
            Finding(
                schema_file,
                line_of(schema_text, provider.offset),
                "blocking",
                "prisma-provider",
                "a postgresql schema cannot be deployed to libSQL/Turso: choose --db local-postgres or neon",
            )
        )

    major = versions.major
    if major is None:
        findings.append(
            Finding(
                "package.json",
                None,
                "blocking",
                "prisma-missing",
                "package.json does not depend on @prisma/client: add it (the app's database "
                "access goes through Prisma)",
            )
        )
    elif major < 5:
        findings.append(
            Finding(
                "package.json",
                None,
                "blocking",
                "prisma-too-old",
                f"Prisma {versions.client} predates driver adapters: upgrade the app to Prisma 5 "
                "or newer (npx prisma@5 ...) and regenerate it",
            )
        )
    elif major < 7:
        findings.append(
            Finding(
                "package.json",
                None,
                "warning",
                "prisma-native-engine",
                f"Prisma {versions.client or versions.cli} uses native engine binaries that are "
                "downloaded from Prisma's servers at install and build time; the deployment moves "
                f"it to Prisma 7 with {target.adapter_package} (no binaries). Check the app "
                "against Prisma 7 if it uses less common client features",
            )
        )
        for path in source_files(app_dir):
            text = path.read_text(encoding="utf-8", errors="replace")
            relative = path.relative_to(app_dir).as_posix()
            for match in _MIDDLEWARE.finditer(text):
                findings.append(
                    Finding(
                        relative,
                        line_of(text, match.start()),
                        "warning" if outside_build(relative) else "blocking",
                        "prisma-middleware",
                        "$use middleware is gone in Prisma 7: rewrite it as a client extension "
                        "(prisma.$extends({ query: { ... } }))",
                    )
                )

    # Any way the app builds its client works: the client it imports supplies the deployment's driver
    # adapter (see engine.webbuild.prismawrap), so no module is rewritten and none is refused here.
    modules = client_modules(app_dir)
    if len(modules) > 1:
        findings.append(
            Finding(
                modules[1].relative_to(app_dir).as_posix(),
                None,
                "warning",
                "prisma-several-clients",
                f"{len(modules)} files construct a PrismaClient; each opens its own connection "
                "pool: import one shared client instead",
            )
        )
    return findings


def _install_findings(app_dir: Path) -> list[Finding]:
    package = read_package_json(app_dir)
    findings = []
    if not (app_dir / "package-lock.json").is_file():
        findings.append(
            Finding(
                "package-lock.json",
                None,
                "warning",
                "no-lockfile",
                "no package-lock.json: dependencies are resolved afresh at every deploy; commit "
                "the lockfile for repeatable builds",
            )
        )
    for section in ("dependencies", "devDependencies"):
        for name in sorted((package.get(section) or {}).keys() & _DOWNLOADS_AT_INSTALL.keys()):
            findings.append(
                Finding(
                    "package.json",
                    None,
                    "warning",
                    "install-downloads",
                    f"{name} downloads a binary while installing, which the build cannot reach: "
                    f"{_DOWNLOADS_AT_INSTALL[name]}",
                )
            )
    return findings


# Services whose SDK refuses to serve a page without its keys (they cannot be made up).
_NEEDS_KEYS = {
    "@clerk/nextjs": ("Clerk", ("NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY", "CLERK_SECRET_KEY")),
}
# SDKs whose client, when built at import, stops the build (Next loads route modules to collect page
# data) unless their key is set: a warning, since a client built inside a handler does not.
_KEY_AT_IMPORT = {"groq-sdk": ("Groq", "GROQ_API_KEY"), "openai": ("OpenAI", "OPENAI_API_KEY")}


def _key_findings(app_dir: Path, env_names: Collection[str] | None) -> list[Finding]:
    package = read_package_json(app_dir)
    findings = []
    for name, (service, keys) in sorted(_NEEDS_KEYS.items()):
        if not any(name in (package.get(section) or {}) for section in ("dependencies", "devDependencies")):
            continue
        missing = [key for key in keys if env_names is None or key not in env_names]
        if not missing:
            continue
        findings.append(
            Finding(
                "package.json",
                None,
                "warning" if env_names is None else "blocking",
                "service-keys",
                f"the app uses {service} ({name}), which answers every page with an error without its "
                f"keys: deploy with {' '.join(f'--env {key}=...' for key in missing)} from your "
                f"{service} dashboard",
            )
        )
    for name, (service, key) in sorted(_KEY_AT_IMPORT.items()):
        if env_names is not None and key in env_names:
            continue
        if not any(name in (package.get(section) or {}) for section in ("dependencies", "devDependencies")):
            continue
        findings.append(
            Finding(
                "package.json",
                None,
                "warning",
                "service-keys",
                f"the app uses {service} ({name}); a client made when a module loads fails the build "
                f"without {key}: deploy with --env {key}=...",
            )
        )
    return findings


def preflight(
    app_dir: Path | str, target_dialect: str | Target, env_names: Collection[str] | None = None
) -> list[Finding]:
    """Findings for deploying ``app_dir`` to ``target_dialect`` (`local-libsql`, `turso`,
    `local-postgres`, `neon`, or `libsql` / `postgresql`), blocking ones first. ``env_names``: the
    variables the deployment sets (then a service's missing keys block; unknown: a warning)."""
    app_dir = Path(app_dir).resolve()
    if not app_dir.is_dir():
        raise InputError(f"app folder {app_dir} does not exist")
    target = parse_target(target_dialect)
    findings = [
        *_prisma_findings(app_dir, target),
        *_install_findings(app_dir),
        *raw_sql_findings(app_dir, target),
        *prerender_findings(app_dir),
        *network_findings(app_dir),
        *_key_findings(app_dir, env_names),
        *(
            Finding(
                path.relative_to(app_dir).as_posix(),
                None,
                "warning",
                "not-utf8",
                "not UTF-8 text: skipped by the checks (copied and built as it is)",
            )
            for path in undecodable_files(app_dir)
        ),
    ]
    return sorted(findings, key=lambda f: (f.severity != "blocking", f.file, f.line or 0))
