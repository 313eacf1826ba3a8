"""Content-addressed blob store: every static file is kept once, under its SHA-256, whatever the
number of deployments that ship it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy ``source`` into the store (once per content). Returns (sha256 hex, size)."""
        hasher = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = hasher.hexdigest()
            final = self.path(digest)
            if final.exists():
                os.unlink(tmp_name)
            else:
                final.parent.mkdir(exist_ok=True)
                os.chmod(tmp_name, 0o444)  # blobs are immutable; served read-only
                os.replace(tmp_name, final)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return digest, size

    def digests(self) -> set[str]:
        return {p.name for p in self.root.glob("??/*") if p.is_file()}

    def delete_unreferenced(self, referenced: Iterable[str]) -> int:
        """Delete every blob not in ``referenced``. Returns how many were deleted."""
        keep = set(referenced)
        deleted = 0
        for digest in self.digests() - keep:
            self.path(digest).unlink(missing_ok=True)
            deleted += 1
        for folder in self.root.iterdir():
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return deleted
