"""Content-addressed blobs: files a worker sends the engine (build output) or fetches from it (a
transformed working copy), named by their SHA-256, so a file the other side has is never sent twice.
A folder travels as a tree: its files as blobs, and a manifest (itself a blob) naming them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import secrets
import shutil
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

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
        """The digests not here; those here are marked used now (``prune`` keeps them)."""
        lacking = []
        for digest in dict.fromkeys(digests):
            try:
                os.utime(self.path(digest))
            except FileNotFoundError:
                lacking.append(digest)
        return lacking

    def prune(self, max_age_seconds: float) -> int:
        """Delete blobs not sent, offered or asked about for ``max_age_seconds``; returns how many."""
        deadline, removed = time.time() - max_age_seconds, 0
        for path in self.root.glob("??/*") if self.root.is_dir() else []:
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < deadline:
                    path.unlink()
                    removed += 1
        return removed

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


def engine_blobs(workspace: Path) -> BlobStore:
    """The engine's blobs: what workers sent it, and what it offers them."""
    return BlobStore(workspace / "blobs")


def put_file(store: BlobStore, path: Path) -> str:
    """Copy a file into the store (the engine's own files, e.g. a transformed working copy)."""
    digest = file_digest(path)
    if not store.missing([digest]):
        return digest
    target = store.path(digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{digest}.{secrets.token_hex(4)}.part")
    try:
        shutil.copyfile(path, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return digest


# -- trees: a folder sent as blobs, described by a manifest that is itself a blob -------------------------


def tree_manifest(
    root: Path, digest_of: Callable[[Path], str], skip: Callable[[str], bool]
) -> dict[str, Any]:
    """``{"files": {relative: [digest, executable]}, "links": {relative: target}}`` for a folder's
    regular files and symbolic links (never followed); ``skip(relative)`` leaves a path out."""
    files: dict[str, list[Any]] = {}
    links: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(root):  # links to folders are listed, not entered
        for name in [*dirnames, *filenames]:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if skip(relative):
                if name in dirnames:
                    dirnames.remove(name)
            elif path.is_symlink():
                target = os.readlink(path)
                if link_inside(relative, target):  # one pointing elsewhere would dangle there anyway
                    links[relative] = target
            elif path.is_file():
                files[relative] = [digest_of(path), bool(path.stat().st_mode & stat.S_IXUSR)]
    return {"files": files, "links": links}


def link_inside(relative: str, target: str) -> bool:
    """Whether a link at ``relative`` pointing at ``target`` stays inside its tree."""
    if target.startswith("/") or "\0" in target:
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(relative), target))
    return not (resolved == ".." or resolved.startswith("../"))


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def read_manifest(data: bytes) -> dict[str, Any]:
    """A manifest as received: every path relative, inside the tree, and under no link of the tree, so
    writing the tree out can never write through a link or outside its folder."""
    try:
        manifest = json.loads(data)
        files, links = dict(manifest["files"]), dict(manifest["links"])
    except (ValueError, KeyError, TypeError):
        raise InputError("a tree manifest is JSON with files and links") from None
    for relative in [*files, *links]:
        parts = PurePosixPath(relative).parts
        if not parts or relative.startswith("/") or ".." in parts or "\0" in relative:
            raise InputError(f"a tree manifest names {relative!r}: paths are relative, inside the tree")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in links:
                raise InputError(f"a tree manifest names {relative!r} under a symbolic link")
    for relative, target in links.items():
        if not isinstance(target, str) or not link_inside(relative, target):
            raise InputError(f"a tree manifest links {relative!r} outside the tree")
    for digest, _ in files.values():
        check_digest(digest)
    return {"files": files, "links": links}


def write_tree(manifest: dict[str, Any], root: Path, place: Callable[[str, Path], object]) -> None:
    """Write a checked manifest's tree under ``root`` (new): ``place(digest, target)`` writes a file's
    content; links are made last, so no file is ever written through one."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, (digest, executable) in manifest["files"].items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        place(digest, target)
        target.chmod(0o755 if executable else 0o644)
    for relative, link in manifest["links"].items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(link)


# -- packs: many blobs in one request, each framed as b"<digest> <size>\n" + its bytes -----------------


PACK_CHUNK = 1 << 20


def pack_frames(paths: dict[str, Path]) -> Iterator[bytes]:
    """A pack of ``{digest: path}``, streamed in chunks of about a megabyte (a standalone server is
    thousands of small files: a chunk each would be a request body of tiny pieces)."""
    buffer = bytearray()
    for digest, path in paths.items():
        buffer += f"{digest} {path.stat().st_size}\n".encode()
        with path.open("rb") as handle:
            while piece := handle.read(PACK_CHUNK):
                buffer += piece
                if len(buffer) >= PACK_CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
    if buffer:
        yield bytes(buffer)


class PackReader:
    """Reads a pack's frames from a stream of chunks (async on the engine, sync on a worker)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def header(self) -> tuple[str, int] | None:
        """The next frame's header, if the buffer holds it whole."""
        end = self.buffer.find(b"\n")
        if end < 0:
            if len(self.buffer) > 100:
                raise InputError("a blob pack frame starts with '<sha256> <size>\\n'")
            return None
        digest, _, size = bytes(self.buffer[:end]).decode("ascii", "replace").partition(" ")
        del self.buffer[: end + 1]
        if not size.isdigit():
            raise InputError("a blob pack frame starts with '<sha256> <size>\\n'")
        return check_digest(digest), int(size)

    def take(self, size: int) -> bytes:
        piece = bytes(self.buffer[:size])
        del self.buffer[: len(piece)]
        return piece


async def receive_pack(store: BlobStore, body: AsyncIterator[bytes], max_bytes: int) -> int:
    """Store every blob of a pack (each checked as ``BlobStore.receive`` does); returns how many."""
    reader, chunks, count = PackReader(), body.__aiter__(), 0

    async def fill() -> bool:
        try:
            reader.buffer += await chunks.__anext__()
        except StopAsyncIteration:
            return False
        return True

    while True:
        frame = reader.header()
        if frame is None:
            if await fill():
                continue
            if reader.buffer:
                raise InputError("the blob pack ends inside a frame header")
            return count
        digest, size = frame

        async def content(left: int = size) -> AsyncIterator[bytes]:
            while left > 0:
                if not reader.buffer and not await fill():
                    raise InputError("the blob pack ends inside a blob")
                piece = reader.take(left)
                left -= len(piece)
                yield piece

        await store.receive(digest, content(), max_bytes)
        count += 1


def read_pack(chunks: Iterator[bytes], store: BlobStore) -> int:
    """Store every blob of a pack received as ``chunks`` (a worker's download), checking each digest."""
    reader, count = PackReader(), 0
    for chunk in chunks:
        reader.buffer += chunk
        while (frame := _whole_frame(reader)) is not None:
            digest, data = frame
            if hashlib.sha256(data).hexdigest() != digest:
                raise InputError(f"blob {digest} arrived damaged")
            target = store.path(digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{digest}.{secrets.token_hex(4)}.part")
            partial.write_bytes(data)
            os.replace(partial, target)
            count += 1
    if reader.buffer:
        raise InputError("the blob pack ends inside a frame")
    return count


def _whole_frame(reader: PackReader) -> tuple[str, bytes] | None:
    """The next frame if the buffer holds it whole (a working copy's files are small), else None."""
    end = reader.buffer.find(b"\n")
    if end < 0:
        return None
    digest, _, size = bytes(reader.buffer[:end]).decode("ascii", "replace").partition(" ")
    if not size.isdigit():
        raise InputError("a blob pack frame starts with '<sha256> <size>\\n'")
    if len(reader.buffer) < end + 1 + int(size):
        return None
    del reader.buffer[: end + 1]
    return check_digest(digest), reader.take(int(size))
