"""Pages Next.js prerenders at build time that read the database, and imports that fetch at build time."""

from __future__ import annotations

import re
from pathlib import Path

from engine.webbuild.appinfo import SOURCE_SUFFIXES, client_modules, line_of, source_files
from engine.webbuild.findings import Finding

_IMPORT = re.compile(
    r"""(?:import|export)\s[^;'"]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)"""
)
_PRERENDERED_STEMS = {
    "page",
    "layout",
    "template",
    "not-found",
    "sitemap",
    "robots",
    "opengraph-image",
    "twitter-image",
    "icon",
    "apple-icon",
}
_FORCE_DYNAMIC = re.compile(
    r"export\s+const\s+dynamic\s*=\s*[\"']force-dynamic[\"']|export\s+const\s+revalidate\s*=\s*0\b"
)
# Using any of these makes Next.js render the page per request instead of at build time.
_DYNAMIC_APIS = re.compile(
    r"\b(cookies|headers|connection|draftMode|unstable_noStore|noStore)\s*\(|\bsearchParams\b"
)
_EXTERNAL_FETCH = re.compile(r"""\bfetch\s*\(\s*[`"'](https?://[^`"'$]+)""")
_GOOGLE_FONT = re.compile(r"""from\s*["']next/font/google["']""")


def resolve_import(app_dir: Path, importer: Path, specifier: str) -> Path | None:
    if specifier.startswith("@/") or specifier.startswith("~/"):
        bases = [app_dir / specifier[2:], app_dir / "src" / specifier[2:]]
    elif specifier.startswith("."):
        bases = [importer.parent / specifier]
    else:
        return None
    for base in bases:
        for candidate in [base, *(base.with_name(base.name + s) for s in sorted(SOURCE_SUFFIXES))]:
            if candidate.is_file():
                return candidate.resolve()
        for suffix in sorted(SOURCE_SUFFIXES):
            index = base / f"index{suffix}"
            if index.is_file():
                return index.resolve()
    return None


def _imports(app_dir: Path, path: Path) -> list[Path]:
    text = path.read_text(encoding="utf-8", errors="replace")
    found = []
    for match in _IMPORT.finditer(text):
        resolved = resolve_import(app_dir, path, match.group(1) or match.group(2))
        if resolved is not None:
            found.append(resolved)
    return found


def _reaches_client(app_dir: Path, path: Path, clients: set[Path], depth: int = 3) -> Path | None:
    """The client module this file reads the database through (directly or via helpers), if any."""
    if path in clients:
        return path
    if depth == 0:
        return None
    for imported in _imports(app_dir, path):
        reached = _reaches_client(app_dir, imported, clients, depth - 1)
        if reached is not None:
            return reached
    return None


def prerender_findings(app_dir: Path) -> list[Finding]:
    app_dir = app_dir.resolve()
    clients = {path.resolve() for path in client_modules(app_dir)}
    findings = []
    for path in source_files(app_dir):
        relative = path.relative_to(app_dir)
        if "app" not in relative.parts[:-1] or path.stem not in _PRERENDERED_STEMS:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.match(r"\s*[\"']use client[\"']", text) or _FORCE_DYNAMIC.search(text):
            continue
        dynamic_segment = any(part.startswith("[") for part in relative.parts[:-1])
        static_params = "generateStaticParams" in text
        if (dynamic_segment and not static_params) or _DYNAMIC_APIS.search(text):
            continue
        for match in _EXTERNAL_FETCH.finditer(text):
            findings.append(
                Finding(
                    file=relative.as_posix(),
                    line=line_of(text, match.start()),
                    severity="warning",
                    code="build-network-fetch",
                    message=(
                        f"prerendered at build time and fetches {match.group(1)}: the build reaches only the "
                        "npm registry, so this fetch fails during the build. Add "
                        '`export const dynamic = "force-dynamic"` to fetch per request instead'
                    ),
                )
            )
        client = _reaches_client(app_dir, path.resolve(), clients)
        if client is None:
            continue
        findings.append(
            Finding(
                file=relative.as_posix(),
                line=None,
                severity="warning",
                code="build-time-database",
                message=(
                    f"prerendered at build time and reads the database through "
                    f"{client.relative_to(app_dir).as_posix()}: the build will query the production "
                    "database (Launchdeck passes it to the build) and the page shows the data of that "
                    'moment. For live data add `export const dynamic = "force-dynamic"`.'
                ),
            )
        )
    return findings


def network_findings(app_dir: Path) -> list[Finding]:
    """next/font/google is served from the npm registry's @fontsource packages (see ``fonts``): a note."""
    from engine.webbuild.fonts import fontsource_package

    findings = []
    for path in source_files(app_dir):
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in _GOOGLE_FONT.finditer(text):
            findings.append(
                Finding(
                    file=path.relative_to(app_dir).as_posix(),
                    line=line_of(text, match.start()),
                    severity="warning",
                    code="build-network-font",
                    message=(
                        "next/font/google would download from Google during the build, which the build "
                        "sandbox cannot reach: the same fonts are served from the npm registry's "
                        "@fontsource packages instead ("
                        + ", ".join(fontsource_package(f) for f in _families(match.group(0), text))
                        + "; a family the registry lacks builds with the fallback font, with a warning)"
                    ),
                )
            )
    return findings


def _families(_import: str, text: str) -> list[str]:
    found = re.search(r"import\s*\{([^}]*)\}\s*from\s*[\"']next/font/google", text)
    if not found:
        return []
    return [n.strip().split(" as ")[0].replace("_", " ") for n in found.group(1).split(",") if n.strip()]
