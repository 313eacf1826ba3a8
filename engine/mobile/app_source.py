"""What a shell takes from the generated app's own folder: its name, its icon, its static export.

Next.js conventions: an icon is ``app/icon.png`` (or ``app/apple-icon.png``, ``public/icon.png``,
``public/logo.png``); an app without a server part sets ``output: 'export'`` in ``next.config.*`` and its
build writes the static site to ``out/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from engine.errors import InputError

ICON_CANDIDATES = ("app/icon.png", "app/apple-icon.png", "public/icon.png", "public/logo.png")
NEXT_CONFIGS = ("next.config.ts", "next.config.mjs", "next.config.js")
STATIC_EXPORT = re.compile(r"""output\s*:\s*["']export["']""")


def _check(app_dir: Path) -> None:
    if not (app_dir / "package.json").is_file():
        raise InputError(f"{app_dir} is not an app folder: it has no package.json")


def display_name(app_dir: Path) -> str:
    _check(app_dir)
    return str(json.loads((app_dir / "package.json").read_text()).get("name") or app_dir.name)


def icon(app_dir: Path) -> Path | None:
    _check(app_dir)
    return next((app_dir / c for c in ICON_CANDIDATES if (app_dir / c).is_file()), None)


def is_static_export(app_dir: Path) -> bool:
    _check(app_dir)
    return any(
        STATIC_EXPORT.search((app_dir / name).read_text())
        for name in NEXT_CONFIGS
        if (app_dir / name).is_file()
    )


def static_export_dir(app_dir: Path) -> Path:
    out = app_dir / "out"
    if not (out / "index.html").is_file():
        raise InputError(f"{app_dir} is a static export but {out} has no index.html: build the app first")
    return out


def shell_source(params: dict[str, Any]) -> dict[str, Any]:
    """Fill name, icon and web_dir from ``params['app_dir']`` where the caller did not give them."""
    if not params.get("app_dir"):
        return params
    app_dir = Path(str(params["app_dir"]))
    filled = dict(params)
    filled.setdefault("name", None)
    filled["name"] = filled["name"] or display_name(app_dir)
    if not filled.get("icon"):
        found = icon(app_dir)
        filled["icon"] = str(found) if found else None
    if not filled.get("server_url") and not filled.get("web_dir") and is_static_export(app_dir):
        filled["web_dir"] = str(static_export_dir(app_dir))
    return filled
