"""What a generated app is made of: its Prisma schema and version, its source files, its client module."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InputError

SOURCE_SUFFIXES = {".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts"}
# Folders that are outputs or dependencies, never the app's own code.
SKIPPED_DIRS = {"node_modules", ".next", ".git", "generated", "dist", "out", "build", ".turbo", ".vercel"}
CONFIG_STEMS = {"next.config", "prisma.config", "postcss.config", "tailwind.config", "eslint.config"}

NEW_PRISMA_CLIENT = re.compile(r"\bnew\s+PrismaClient\s*\(")


@dataclass(frozen=True)
class PrismaVersions:
    client: str | None
    cli: str | None

    @property
    def major(self) -> int | None:
        version = self.client or self.cli
        if not version:
            return None
        match = re.search(r"(\d+)", version)
        return int(match.group(1)) if match else None


def read_package_json(app_dir: Path) -> dict[str, Any]:
    path = app_dir / "package.json"
    if not path.is_file():
        raise InputError(f"{app_dir} has no package.json: point at the generated app's root folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON (line {exc.lineno}): fix it and deploy again") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a JSON object")
    return data


def dependency_spec(package: dict[str, Any], name: str) -> str | None:
    for section in ("dependencies", "devDependencies"):
        spec = (package.get(section) or {}).get(name)
        if isinstance(spec, str):
            return spec
    return None


def _locked_version(app_dir: Path, name: str) -> str | None:
    lock = app_dir / "package-lock.json"
    if not lock.is_file():
        return None
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    entry = (data.get("packages") or {}).get(f"node_modules/{name}") or {}
    version = entry.get("version")
    return version if isinstance(version, str) else None


def _bare_version(spec: str | None) -> str | None:
    if spec is None:
        return None
    match = re.search(r"\d+(\.\d+){0,2}[\w.-]*", spec)
    return match.group(0) if match else None


def prisma_versions(app_dir: Path) -> PrismaVersions:
    """The installed (locked) Prisma versions, else the ones package.json asks for."""
    package = read_package_json(app_dir)
    client = _locked_version(app_dir, "@prisma/client") or _bare_version(
        dependency_spec(package, "@prisma/client")
    )
    cli = _locked_version(app_dir, "prisma") or _bare_version(dependency_spec(package, "prisma"))
    return PrismaVersions(client=client, cli=cli)


def find_schema(app_dir: Path) -> Path | None:
    package = read_package_json(app_dir)
    configured = (
        (package.get("prisma") or {}).get("schema") if isinstance(package.get("prisma"), dict) else None
    )
    candidates = [configured] if isinstance(configured, str) else []
    for config in ("prisma.config.ts", "prisma.config.mjs", "prisma.config.js"):
        path = app_dir / config
        if path.is_file():
            match = re.search(r"schema\s*:\s*[\"']([^\"']+)[\"']", read_text(path) or "")
            if match:
                candidates.append(match.group(1))
    candidates += ["prisma/schema.prisma", "schema.prisma"]
    for candidate in candidates:
        path = (app_dir / candidate).resolve()
        if path.is_file() and path.is_relative_to(app_dir.resolve()):
            return path
    return None


def read_text(path: Path) -> str | None:
    """A file's text, or None when it is not UTF-8 (such files are skipped with a note, see
    ``undecodable_files``)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def _all_sources(app_dir: Path) -> Iterator[Path]:
    for path in sorted(app_dir.rglob("*")):
        relative = path.relative_to(app_dir)
        if any(part in SKIPPED_DIRS for part in relative.parts[:-1]):
            continue
        if path.suffix in SOURCE_SUFFIXES and path.is_file() and not path.name.endswith(".d.ts"):
            yield path


def source_files(app_dir: Path) -> Iterator[Path]:
    """The app's own JavaScript/TypeScript files (UTF-8 ones), in a stable order."""
    for path in _all_sources(app_dir):
        if read_text(path) is not None:
            yield path


def undecodable_files(app_dir: Path) -> list[Path]:
    """Source files that are not UTF-8: not analysed (they are still copied and built as they are)."""
    return [path for path in _all_sources(app_dir) if read_text(path) is None]


def client_modules(app_dir: Path) -> list[Path]:
    """Files that construct a PrismaClient (usually lib/prisma.ts or lib/db.ts)."""
    return [
        path
        for path in source_files(app_dir)
        if path.stem not in CONFIG_STEMS and NEW_PRISMA_CLIENT.search(read_text(path) or "")
    ]


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
