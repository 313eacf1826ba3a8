"""Pack an app folder for upload: a reproducible .tar.gz of what the app's .gitignore files keep, never
``node_modules``, ``.next``, ``.git`` or ``.env*`` (secrets stay on the caller's machine; the engine's
vault gets them through ``--env``). The same folder packs to the same bytes, so the engine stores an
unchanged app once."""

from __future__ import annotations

import gzip
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pathspec

NEVER = frozenset({"node_modules", ".next", ".git", ".open-next", ".vercel", ".turbo"})


def never_packed(name: str) -> bool:
    return name in NEVER or name.startswith(".env")


@dataclass
class Packed:
    path: Path
    files: int
    bytes_in: int
    skipped_links: list[str] = field(default_factory=list)


def _ignore_specs(root: Path) -> dict[PurePosixPath, pathspec.GitIgnoreSpec]:
    specs: dict[PurePosixPath, pathspec.GitIgnoreSpec] = {}
    for current, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders if not never_packed(f))
        if ".gitignore" in files:
            relative = PurePosixPath(Path(current).relative_to(root).as_posix())
            lines = (Path(current) / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
            specs[relative] = pathspec.GitIgnoreSpec.from_lines(lines)
    return specs


def _ignored(specs: dict[PurePosixPath, pathspec.GitIgnoreSpec], path: PurePosixPath, is_dir: bool) -> bool:
    for base, spec in specs.items():
        if base != PurePosixPath(".") and base not in path.parents:
            continue
        relative = path.relative_to(base) if base != PurePosixPath(".") else path
        if spec.match_file(str(relative) + ("/" if is_dir else "")):
            return True
    return False


def app_files(root: Path) -> list[PurePosixPath]:
    """The app's files (and links) to pack, relative to ``root``, sorted."""
    specs = _ignore_specs(root)
    found: list[PurePosixPath] = []
    for current, folders, files in os.walk(root):
        here = PurePosixPath(Path(current).relative_to(root).as_posix())
        kept = []
        for folder in sorted(folders):
            path = here / folder if here != PurePosixPath(".") else PurePosixPath(folder)
            if never_packed(folder) or _ignored(specs, path, True):
                continue
            if (Path(current) / folder).is_symlink():
                found.append(path)  # a link to a folder is packed as the link
                continue
            kept.append(folder)
        folders[:] = kept
        for name in sorted(files):
            path = here / name if here != PurePosixPath(".") else PurePosixPath(name)
            if never_packed(name) or _ignored(specs, path, False):
                continue
            found.append(path)
    return sorted(found)


def pack(root: Path, out: Path) -> Packed:
    root = root.resolve()
    packed = Packed(out, 0, 0)
    with (
        out.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for relative in app_files(root):
            source = root / Path(*relative.parts)
            if source.is_symlink():
                target = (source.parent / os.readlink(source)).resolve()
                if not target.is_relative_to(root):
                    packed.skipped_links.append(str(relative))  # the engine would refuse it
                    continue
            info = archive.gettarinfo(str(source), arcname=str(relative))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if info.mode & 0o100 else 0o644
            if info.isreg():
                with source.open("rb") as handle:
                    archive.addfile(info, handle)
                packed.bytes_in += info.size
            elif info.issym():
                archive.addfile(info)
            else:
                continue
            packed.files += 1
    return packed
