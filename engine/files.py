"""Files and folders: small files written atomically (temp file beside, fsync, rename: a crash leaves the
old or the new content, never a torn file; the vault, the token bootstrap, the engine's discovery file,
the edge's JSON state), and folders deleted off a deployment's critical path."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically to ``path`` with mode 0600 (readable by this user only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600, a unique name
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def discard_in_background(folder: Path, trash: Path | None = None) -> None:
    """Delete ``folder`` without waiting for it (a node_modules tree takes seconds): moved into ``trash``
    (the same file system) at once, then deleted by a thread. Whatever a crash leaves in ``trash`` is
    deleted at the engine's start. Without ``trash``, the folder is deleted in place by the thread."""
    if not folder.exists():
        return
    target = folder
    if trash is not None:
        trash.mkdir(parents=True, exist_ok=True)
        target = trash / f"{folder.name}-{secrets.token_hex(4)}"
        folder.replace(target)
    threading.Thread(target=shutil.rmtree, args=(target, True), name="discard", daemon=True).start()
