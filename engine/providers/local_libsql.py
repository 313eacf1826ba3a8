"""Local ``DatabaseProvider``: one libSQL/SQLite file per app under the workspace.

The app opens it with ``@prisma/adapter-libsql`` and a ``file:`` URL. Suspending checkpoints the file
and moves it into ``suspended/``, so the app can no longer reach its data; resuming moves it back.
If the app created a new file in the meantime, resume refuses rather than overwrite either one.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sqlite3
from pathlib import Path

from engine.config import settings
from engine.errors import Conflict, InputError
from engine.providers.base import DatabaseHandle

SIDE_FILES = ("-wal", "-shm", "-journal")


def file_name_for(app_name: str) -> str:
    if not app_name or not app_name.strip():
        raise InputError("an app name is needed to provision its database")
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", app_name).strip(".")
    if clean != app_name or len(clean) > 100:
        clean = f"{clean[:100]}_{hashlib.sha256(app_name.encode()).hexdigest()[:8]}"
    return f"{clean}.db"


def app_folder(workspace: Path, app_name: str) -> Path:
    """Where an app's libSQL database lives: a folder of its own (``pipelines.providers`` gives each app
    a LocalLibsql rooted there), so its server and build can be given that folder and nothing else."""
    return workspace / "databases" / app_name


class LocalLibsql:
    name = "local-libsql"

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or settings().workspace / "databases"
        self.suspended_dir = self.root / "suspended"

    def path_for(self, name: str) -> Path:
        return self.root / file_name_for(name)

    def _suspended_path(self, name: str) -> Path:
        return self.suspended_dir / file_name_for(name)

    def _handle(self, name: str) -> DatabaseHandle:
        path = self.path_for(name)
        return DatabaseHandle(provider=self.name, name=name, id=path.name, url=f"file:{path.resolve()}")

    # -- DatabaseProvider ----------------------------------------------------------------------
    def provision(self, name: str) -> DatabaseHandle:
        """Create the empty database file, or adopt it (also when suspended: it is resumed)."""
        path = self.path_for(name)
        if not path.exists() and self._suspended_path(name).exists():
            self.resume(name)
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.new")
            conn = sqlite3.connect(partial)
            conn.execute("VACUUM")  # writes the header: an empty but valid database
            conn.close()
            partial.replace(path)
        return self._handle(name)

    def find(self, name: str) -> DatabaseHandle | None:
        return self._handle(name) if self.exists(name) else None

    def exists(self, name: str) -> bool:
        return self.path_for(name).exists() or self._suspended_path(name).exists()

    def is_suspended(self, name: str) -> bool:
        return self._suspended_path(name).exists() and not self.path_for(name).exists()

    def suspend(self, name: str) -> None:
        path, parked = self.path_for(name), self._suspended_path(name)
        if not path.exists():
            return  # already suspended, or never provisioned
        if parked.exists():
            raise Conflict(f"{parked} already exists; resolve it before suspending {name} again")
        with sqlite3.connect(path) as conn:  # fold the WAL into the file so one file holds everything
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        self.suspended_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(parked))
        for suffix in SIDE_FILES:
            side = Path(f"{path}{suffix}")
            if side.exists():
                shutil.move(str(side), f"{parked}{suffix}")

    def resume(self, name: str) -> None:
        path, parked = self.path_for(name), self._suspended_path(name)
        if not parked.exists():
            return
        if path.exists():
            raise Conflict(
                f"{path} was created while {name} was suspended; keep one of it and {parked} by hand, then resume"
            )
        for suffix in SIDE_FILES:
            side = Path(f"{parked}{suffix}")
            if side.exists():
                shutil.move(str(side), f"{path}{suffix}")
        shutil.move(str(parked), str(path))

    def destroy(self, name: str) -> None:
        for base in (self.path_for(name), self._suspended_path(name)):
            for suffix in ("", *SIDE_FILES):
                Path(f"{base}{suffix}").unlink(missing_ok=True)
