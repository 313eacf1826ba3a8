"""Cloudflare Pages direct-upload file handling, as wrangler does it (``shared/specs/cloudflare/UPLOAD_NOTES.md``).

Pure functions: walking the output directory, hashing, and packing the missing files into upload
buckets. The HTTP side lives in ``cloudflare.py``.
"""

from __future__ import annotations

import base64
import fnmatch
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from engine.errors import InputError

MAX_ASSET_SIZE = 25 * 1024 * 1024  # constants.ts: MAX_ASSET_SIZE
MAX_BUCKET_SIZE = 40 * 1024 * 1024  # constants.ts: MAX_BUCKET_SIZE (raw bytes)
MAX_BUCKET_FILE_COUNT = 2000  # constants.ts: MAX_BUCKET_FILE_COUNT (not Windows)
BULK_UPLOAD_CONCURRENCY = 3  # constants.ts
DEFAULT_MAX_FILE_COUNT = 20000  # used when the upload JWT has no max_file_count_allowed claim
# validate.ts: never uploaded as assets. The first four go to the deployment form instead.
SPECIAL_FILES = ("_headers", "_redirects", "_routes.json", "_worker.js")
IGNORED = (
    "functions",
    "functions/*",
    "**/.DS_Store",
    ".DS_Store",
    "**/node_modules",
    "node_modules",
    "**/node_modules/*",
    "node_modules/*",
    "**/.git",
    ".git",
    ".git/*",
    "**/.git/*",
    ".wrangler",
    ".wrangler/*",
)


@dataclass(frozen=True)
class Asset:
    path: Path
    key: str  # manifest key: "/" + relative path with "/" separators
    hash: str
    size: int
    content_type: str


def asset_hash(content: bytes, filename: str) -> str:
    """``hex(blake3(base64(content) + extension))[:32]``; the extension has no dot (hash.ts)."""
    extension = Path(filename).suffix.removeprefix(".")
    data = base64.b64encode(content) + extension.encode()
    return blake3(data).hexdigest()[:32]


def content_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _ignored(relative: str) -> bool:
    return relative in SPECIAL_FILES or any(fnmatch.fnmatchcase(relative, p) for p in IGNORED)


def collect(root: Path, *, max_files: int = DEFAULT_MAX_FILE_COUNT) -> list[Asset]:
    """Every uploadable file under ``root``; says clearly which file breaks a limit."""
    if not root.is_dir():
        raise InputError(f"{root} is not a directory: give the build output folder to deploy")
    assets: list[Asset] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() or not path.is_file() or _ignored(relative):
            continue
        if any(part in ("node_modules", ".git", ".wrangler") for part in path.relative_to(root).parts):
            continue
        if relative.split("/")[0] == "functions":
            continue
        size = path.stat().st_size
        if size > MAX_ASSET_SIZE:
            raise InputError(
                f"{relative} is {size:,} bytes; Cloudflare Pages takes files up to {MAX_ASSET_SIZE:,} bytes. "
                "Split it or serve it from object storage."
            )
        assets.append(
            Asset(
                path, "/" + relative, asset_hash(path.read_bytes(), path.name), size, content_type(path.name)
            )
        )
    if len(assets) > max_files:
        raise InputError(
            f"{root} has {len(assets):,} files; this Cloudflare Pages project allows {max_files:,}."
        )
    if not assets:
        raise InputError(f"{root} has no files to deploy")
    return assets


def buckets(missing: list[Asset]) -> list[list[Asset]]:
    """Pack largest first into buckets of at most 40 MiB and 2,000 files, round-robin (upload.ts:171-212)."""
    ordered = sorted(missing, key=lambda a: a.size, reverse=True)
    packed: list[list[Asset]] = [[] for _ in range(BULK_UPLOAD_CONCURRENCY)]
    sizes = [0] * BULK_UPLOAD_CONCURRENCY
    for offset, asset in enumerate(ordered):
        placed = False
        for i in range(len(packed)):
            index = (i + offset) % len(packed)
            if sizes[index] + asset.size <= MAX_BUCKET_SIZE and len(packed[index]) < MAX_BUCKET_FILE_COUNT:
                packed[index].append(asset)
                sizes[index] += asset.size
                placed = True
                break
        if not placed:
            packed.append([asset])
            sizes.append(asset.size)
    return [bucket for bucket in packed if bucket]


def upload_payload(bucket: list[Asset]) -> list[dict[str, object]]:
    return [
        {
            "key": a.hash,
            "value": base64.b64encode(a.path.read_bytes()).decode(),
            "metadata": {"contentType": a.content_type},
            "base64": True,
        }
        for a in bucket
    ]
