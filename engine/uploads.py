"""Uploads: an app arrives as a .tar.gz or .zip, a preview database as a SQLite file or a SQL dump.

The body is streamed to disk under a size limit while its SHA-256 is computed; an archive is checked
entry by entry *before* anything is unpacked (no absolute paths, no ``..``, no device files or FIFOs,
symlinks and hard links only to somewhere inside, at most so many files and unpacked bytes), then
unpacked into a private folder and renamed into place. Anything refused leaves nothing behind.

Stored content is addressed by its digest, so an identical upload is stored once; each owner gets its
own ``upload_id`` for it (the ``uploads`` table), and only that owner's routes can name it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import stat
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from engine.errors import InputError, NotFound, TooLarge
from engine.store import Store

UploadKind = Literal["app", "preview"]
SQLITE_MAGIC = b"SQLite format 3\x00"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
CHUNK = 1 << 20
# Folders a build makes or installs: never worth unpacking (the build makes its own).
SKIPPED_FOLDERS = frozenset({"node_modules", ".next", ".git"})


@dataclass(frozen=True)
class Limits:
    body_bytes: int
    unpacked_bytes: int
    files: int


@dataclass(frozen=True)
class Upload:
    id: str
    owner: str
    kind: str
    format: str
    digest: str
    size_bytes: int
    files: int
    created_at: Any

    def public(self) -> dict[str, Any]:
        return {
            "upload_id": self.id,
            "kind": self.kind,
            "format": self.format,
            "digest": f"sha256:{self.digest}",
            "size_bytes": self.size_bytes,
            "files": self.files,
            "created_at": self.created_at,
        }


def _upload(row: dict[str, Any]) -> Upload:
    return Upload(
        id=str(row["id"]), owner=row["owner"], kind=row["kind"], format=row["format"], digest=row["digest"],
        size_bytes=int(row["size_bytes"]), files=int(row["files"]), created_at=row["created_at"],
    )  # fmt: skip


def root(workspace: Path) -> Path:
    return workspace / "uploads"


def content_path(workspace: Path, kind: str, digest: str) -> Path:
    """Where an upload's content lives: the unpacked app folder, or the preview file's folder."""
    return root(workspace) / kind / digest


# -- receiving ----------------------------------------------------------------------------------


async def receive(
    store: Store,
    workspace: Path,
    chunks: AsyncIterator[bytes],
    *,
    owner: str,
    kind: UploadKind,
    limits: Limits,
) -> Upload:
    """Stream ``chunks`` to a private file, check and store it; return the owner's upload record."""
    incoming = root(workspace) / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=incoming, prefix="body-")
    body = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in chunks:
                size += len(chunk)
                if size > limits.body_bytes:
                    raise TooLarge(
                        f"the upload is over the limit of {limits.body_bytes:,} bytes "
                        "(LAUNCHDECK_UPLOAD_MAX_BYTES); leave node_modules, .next and build output out"
                    )
                digest.update(chunk)
                handle.write(chunk)
        if size == 0:
            raise InputError("the upload is empty: send the archive (or database file) as the request body")
        return await asyncio.to_thread(
            store_body,
            store,
            workspace,
            body,
            digest.hexdigest(),
            size,
            owner=owner,
            kind=kind,
            limits=limits,
        )
    finally:
        body.unlink(missing_ok=True)


def store_body(
    store: Store,
    workspace: Path,
    body: Path,
    digest: str,
    size: int,
    *,
    owner: str,
    kind: UploadKind,
    limits: Limits,
) -> Upload:
    existing = store.fetchone(
        "SELECT * FROM uploads WHERE owner = ? AND kind = ? AND digest = ?", [owner, kind, digest]
    )
    target = content_path(workspace, kind, digest)
    if existing is not None and target.exists():
        return _upload(existing)
    with body.open("rb") as handle:
        head = handle.read(16)
    if kind == "app":
        fmt, files = unpack_app(body, head, target, limits)
    else:
        fmt, files = keep_preview(body, head, target)
    if existing is not None:  # the row outlived its content (cleaned up by hand): content is back now
        return _upload(existing)
    upload_id = str(uuid.uuid4())
    store.execute(
        "INSERT INTO uploads (id, owner, kind, format, digest, size_bytes, files) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        [upload_id, owner, kind, fmt, digest, size, files],
    )
    row = store.fetchone(
        "SELECT * FROM uploads WHERE owner = ? AND kind = ? AND digest = ?", [owner, kind, digest]
    )
    assert row is not None
    return _upload(row)


# -- preview databases --------------------------------------------------------------------------


def keep_preview(body: Path, head: bytes, target: Path) -> tuple[str, int]:
    if head.startswith(SQLITE_MAGIC):
        fmt, name = "sqlite", "preview.sqlite"
        check_sqlite(body)
    elif head.startswith((GZIP_MAGIC, ZIP_MAGIC)):
        raise InputError(
            "a preview database is a SQLite file (sql.js `db.export()`) or a SQL dump, not an archive: "
            "send the file itself"
        )
    else:
        fmt, name = "sql", "preview.sql"
        check_sql_dump(body)
    staging = Path(tempfile.mkdtemp(dir=body.parent, prefix="preview-"))
    try:
        shutil.copyfile(body, staging / name)
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return fmt, 1


def check_sqlite(path: Path) -> None:
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"the preview database is a damaged SQLite file ({exc}); export it again") from None


def check_sql_dump(path: Path) -> None:
    with path.open("rb") as handle:
        start = handle.read(CHUNK)
    if b"\x00" in start:
        raise InputError(
            "the preview database is neither a SQLite file nor a SQL dump (it holds binary data): "
            "send sql.js `db.export()` output or `sqlite3 .dump` text"
        )
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(start) - 4:  # a character cut at the chunk's end is fine
            raise InputError("the preview SQL dump is not UTF-8 text: export it again as UTF-8") from None


# -- app archives -------------------------------------------------------------------------------


def unpack_app(body: Path, head: bytes, target: Path, limits: Limits) -> tuple[str, int]:
    if head.startswith(GZIP_MAGIC):
        fmt = "tar.gz"
    elif head.startswith(ZIP_MAGIC):
        fmt = "zip"
    else:
        raise InputError(
            "an app upload is a .tar.gz or .zip of the app's folder (package.json at its root or in one "
            "top-level folder); this body is neither"
        )
    staging = Path(tempfile.mkdtemp(dir=body.parent, prefix="app-"))
    try:
        tree = staging / "tree"
        tree.mkdir()
        files = _unpack_tar(body, tree, limits) if fmt == "tar.gz" else _unpack_zip(body, tree, limits)
        app_root = _app_root(tree)
        _publish(app_root, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return fmt, files


def _publish(folder: Path, target: Path) -> None:
    """Rename ``folder`` to ``target`` (same file system). Another upload of the same content may win
    the race: its copy is identical, so ours is simply dropped."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.rename(target)
    except OSError:
        if not target.exists():
            raise


def _app_root(tree: Path) -> Path:
    if (tree / "package.json").is_file():
        return tree
    entries = [e for e in tree.iterdir() if e.name not in ("__MACOSX",)]
    if (
        len(entries) == 1
        and entries[0].is_dir()
        and not entries[0].is_symlink()
        and (entries[0] / "package.json").is_file()
    ):
        return entries[0]
    raise InputError(
        "the archive has no package.json at its root (or in its one top-level folder): archive the "
        "generated app's folder itself"
    )


def _member_path(name: str) -> PurePosixPath | None:
    """The entry's path inside the root, or None for the root itself; refuses escapes."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("\\"):
        raise InputError(
            f"archive entry {name!r} is an absolute path: archive the app folder with relative paths"
        )
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(f"archive entry {name!r} points outside the app folder (..): refused")
    return PurePosixPath(*parts) if parts else None


def _skipped(path: PurePosixPath) -> bool:
    return any(part in SKIPPED_FOLDERS for part in path.parts)


def _link_inside(entry: PurePosixPath, target: str) -> bool:
    if target.startswith("/") or not target:
        return False
    resolved: list[str] = list(entry.parent.parts)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return False
            resolved.pop()
        else:
            resolved.append(part)
    return True


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.files = 0
        self.bytes = 0

    def add_file(self, name: str) -> None:
        self.files += 1
        if self.files > self.limits.files:
            raise TooLarge(
                f"the archive has more than {self.limits.files:,} entries (LAUNCHDECK_UPLOAD_MAX_FILES): "
                "leave node_modules and build output out"
            )

    def add_bytes(self, count: int, name: str) -> None:
        self.bytes += count
        if self.bytes > self.limits.unpacked_bytes:
            raise TooLarge(
                f"the archive unpacks to more than {self.limits.unpacked_bytes:,} bytes "
                f"(LAUNCHDECK_UPLOAD_MAX_UNPACKED_BYTES; reached at {name!r}): refused"
            )


def _unpack_tar(body: Path, tree: Path, limits: Limits) -> int:
    budget = _Budget(limits)
    try:
        with tarfile.open(body, "r:gz") as archive:
            members: list[tarfile.TarInfo] = []
            for member in archive:  # check every entry before writing anything
                path = _member_path(member.name)
                if path is None or _skipped(path):
                    continue
                if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
                    raise InputError(f"archive entry {member.name!r} is a device file or FIFO: refused")
                if member.issym():
                    if not _link_inside(path, member.linkname):
                        raise InputError(
                            f"archive entry {member.name!r} is a symlink to {member.linkname!r}, outside the "
                            "app folder: refused"
                        )
                elif member.islnk():
                    link = _member_path(member.linkname)
                    if link is None:
                        raise InputError(f"archive entry {member.name!r} is a hard link to the root: refused")
                elif not (member.isfile() or member.isdir()):
                    raise InputError(f"archive entry {member.name!r} is not a file, folder or link: refused")
                budget.add_file(member.name)
                budget.add_bytes(member.size if member.isfile() else 0, member.name)
                member.name = str(path)
                members.append(member)
            # The data filter checks again (links, modes, owners) as it writes.
            archive.extractall(tree, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise InputError(f"archive refused: {exc}") from None
        raise InputError(
            f"the .tar.gz could not be read ({type(exc).__name__}: {exc}); create it again"
        ) from None
    return budget.files


def _unpack_zip(body: Path, tree: Path, limits: Limits) -> int:
    budget = _Budget(limits)
    try:
        with zipfile.ZipFile(body) as archive:
            plan: list[tuple[zipfile.ZipInfo, PurePosixPath, str | None]] = []
            for info in archive.infolist():
                path = _member_path(info.filename)
                if path is None or _skipped(path):
                    continue
                mode = info.external_attr >> 16
                link: str | None = None
                if mode and (
                    stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
                ):
                    raise InputError(f"archive entry {info.filename!r} is a device file or FIFO: refused")
                if mode and stat.S_ISLNK(mode):
                    if info.file_size > 4096:
                        raise InputError(
                            f"archive entry {info.filename!r} is a symlink with an oversized target"
                        )
                    link = archive.read(info).decode("utf-8", "replace")
                    if not _link_inside(path, link):
                        raise InputError(
                            f"archive entry {info.filename!r} is a symlink to {link!r}, outside the app "
                            "folder: refused"
                        )
                budget.add_file(info.filename)
                budget.add_bytes(info.file_size, info.filename)  # declared; real bytes counted below
                plan.append((info, path, link))
            written = _Budget(limits)
            for info, path, link in plan:
                destination = tree.joinpath(*path.parts)
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                if not destination.parent.resolve().is_relative_to(tree.resolve()):
                    raise InputError(
                        f"archive entry {info.filename!r} would be written through a link: refused"
                    )
                if link is not None:
                    os.symlink(link, destination)
                    continue
                with archive.open(info) as source, open(destination, "xb") as out:
                    while block := source.read(CHUNK):
                        written.add_bytes(len(block), info.filename)  # a lying header cannot get past this
                        out.write(block)
                mode = (info.external_attr >> 16) & 0o777
                os.chmod(destination, 0o755 if mode & 0o100 else 0o644)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise InputError(
            f"the .zip could not be read ({type(exc).__name__}: {exc}); create it again"
        ) from None
    return budget.files


# -- lookup -------------------------------------------------------------------------------------


def get(store: Store, upload_id: str, *, kind: UploadKind) -> Upload:
    row = store.fetchone("SELECT * FROM uploads WHERE CAST(id AS TEXT) = ?", [upload_id])
    if row is None or row["kind"] != kind:
        noun = "app" if kind == "app" else "preview database"
        raise NotFound(f"no {noun} upload {upload_id}: upload it first with POST /api/uploads?kind={kind}")
    return _upload(row)


def app_folder(workspace: Path, upload: Upload) -> Path:
    folder = content_path(workspace, "app", upload.digest)
    if not folder.is_dir():
        raise NotFound(f"upload {upload.id}'s content is gone from the engine: upload the app again")
    return folder


def preview_file(workspace: Path, upload: Upload) -> Path:
    folder = content_path(workspace, "preview", upload.digest)
    for name in ("preview.sqlite", "preview.sql"):
        if (folder / name).is_file():
            return folder / name
    raise NotFound(f"upload {upload.id}'s content is gone from the engine: upload the preview database again")


def list_uploads(store: Store, owners: list[str] | None) -> list[Upload]:
    if owners is None:
        rows = store.fetchall("SELECT * FROM uploads ORDER BY created_at DESC LIMIT 1000")
    else:
        marks = ", ".join("?" for _ in owners) or "NULL"
        rows = store.fetchall(
            f"SELECT * FROM uploads WHERE owner IN ({marks}) ORDER BY created_at DESC LIMIT 1000", owners
        )
    return [_upload(row) for row in rows]


# -- retention ----------------------------------------------------------------------------------


def prune(store: Store, workspace: Path, *, older_than: timedelta, now: datetime) -> list[str]:
    """Forget uploads older than ``older_than`` and delete content no remaining upload names. An upload a
    pending or running deployment was started from is kept until that run ends. Returns the ids forgotten."""
    cutoff = now - older_than
    busy = " ".join(
        str(row["params"])
        for row in store.fetchall("SELECT params FROM deployments WHERE status IN ('pending', 'running')")
    )
    old = [_upload(row) for row in store.fetchall("SELECT * FROM uploads WHERE created_at < ?", [cutoff])]
    expired = [u for u in old if u.digest not in busy and u.id not in busy]
    for upload in expired:
        store.execute("DELETE FROM uploads WHERE CAST(id AS TEXT) = ?", [upload.id])
    for kind, digest in {(u.kind, u.digest) for u in expired}:
        still_named = store.scalar(
            "SELECT count(*) FROM uploads WHERE kind = ? AND digest = ?", [kind, digest]
        )
        if not still_named:
            shutil.rmtree(content_path(workspace, kind, digest), ignore_errors=True)
    return [u.id for u in expired]
