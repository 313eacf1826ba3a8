"""Small JSON state files written atomically (temp file, fsync, rename): a crash leaves the old or the
new content, never a torn file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.files import write_private


def write_json(path: Path, data: Any) -> None:
    write_private(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
