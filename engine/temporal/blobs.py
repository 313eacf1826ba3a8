"""Content-addressed blobs: files a worker sends the engine (build output) or fetches from it, named by
their SHA-256, so a file the engine already has is never sent twice."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from engine.errors import InputError, NotFound, TooLarge

DIGEST = re.compile(r"^[0-9a-f]{64}$")


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest):
        raise InputError("a blob is named by its SHA-256: 64 lower-case hex digits")
    return digest


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def missing(self, digests: list[str]) -> list[str]:
        return [d for d in dict.fromkeys(digests) if not self.has(d)]

    def open(self, digest: str) -> Path:
        path = self.path(digest)
        if not path.is_file():
            raise NotFound(f"no blob {digest}")
        return path

    async def receive(self, digest: str, body: AsyncIterator[bytes], max_bytes: int) -> int:
        """Stream a body to disk, checking its size as it comes and its digest at the end."""
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{digest}.{secrets.token_hex(4)}.part")
        hasher, size = hashlib.sha256(), 0
        try:
            with partial.open("wb") as handle:
                async for chunk in body:
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(
                            f"the blob is over the limit of {max_bytes:,} bytes (LAUNCHDECK_WORKER_BLOB_MAX_BYTES)"
                        )
                    hasher.update(chunk)
                    handle.write(chunk)
            if hasher.hexdigest() != digest:
                raise InputError(f"the body's SHA-256 is {hasher.hexdigest()}, not {digest}")
            os.replace(partial, target)  # atomic: a blob is either complete or absent
        finally:
            partial.unlink(missing_ok=True)
        return size
