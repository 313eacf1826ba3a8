"""Generate a Capacitor shell for an app with the real Capacitor CLI (offline, from the tool folder).

The shell loads the app's live URL (``server.url``) or, for an app without a server part, bundles its
static export as ``webDir``. Icons and splash screens come from ``@capacitor/assets``.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from engine.errors import InputError
from engine.mobile import icon as icons
from engine.mobile.eas_json import write_eas_json
from engine.nodetools import installed_version, run_node, tool_script

TOOLS = Path(__file__).resolve().parent / "node"
PLATFORMS = ("android", "ios")
# Reverse-DNS; Android also forbids segments that start with a digit, so both stores accept it.
BUNDLE_ID = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*(\.[a-zA-Z][a-zA-Z0-9_]*)+$")
WEB_DIR = "www"

FALLBACK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{name}</title></head>
<body><p>{name} needs a network connection.</p></body></html>
"""


@dataclass(frozen=True)
class ShellSpec:
    bundle_id: str
    name: str
    version: str = "1.0.0"
    server_url: str | None = None  # the app's live URL; None bundles ``web_dir``
    web_dir: Path | None = None  # a static export (must hold index.html)
    icon: Path | None = None  # a square PNG, 1024x1024 or larger
    background: str = "#ffffff"

    def check(self) -> None:
        """Every problem with the input at once, before anything is generated."""
        problems: list[str] = []
        if not BUNDLE_ID.match(self.bundle_id):
            problems.append(
                f"bundle id {self.bundle_id!r} must be reverse-DNS like com.example.app "
                "(letters, digits, underscores; each part starts with a letter)"
            )
        if not self.name.strip():
            problems.append("the app name is empty")
        if self.server_url is not None:
            url = urlparse(self.server_url)
            if url.scheme not in ("https", "http") or not url.netloc:
                problems.append(f"server URL {self.server_url!r} must be an absolute http(s) URL")
        elif self.web_dir is None:
            problems.append("give the app's live URL or a static export directory (neither was given)")
        elif not (self.web_dir / "index.html").is_file():
            problems.append(f"static export {self.web_dir} has no index.html")
        if self.icon is not None:
            try:
                width, height = icons.png_size(self.icon)
            except (InputError, OSError) as exc:
                problems.append(str(exc))
            else:
                if width != height or width < 1024:
                    problems.append(
                        f"icon {self.icon} is {width}x{height}: give a square PNG of 1024x1024 or more"
                    )
        try:
            icons.parse_color(self.background)
        except InputError as exc:
            problems.append(str(exc))
        if problems:
            raise InputError("cannot generate the mobile shell: " + "; ".join(problems))


def capacitor_config(spec: ShellSpec) -> dict[str, object]:
    """``capacitor.config.json`` (the CapacitorConfig of @capacitor/cli's declarations)."""
    config: dict[str, object] = {"appId": spec.bundle_id, "appName": spec.name, "webDir": WEB_DIR}
    if spec.server_url:
        url = urlparse(spec.server_url)
        config["server"] = {
            "url": spec.server_url,
            "androidScheme": "https",
            "cleartext": url.scheme == "http",
        }
    return config


def package_manifest(spec: ShellSpec) -> dict[str, object]:
    """The shell's package.json: the exact Capacitor versions it was generated with (one major)."""
    versions = {name: installed_version(TOOLS, f"@capacitor/{name}") for name in ("cli", "core", *PLATFORMS)}
    majors = {version.split(".")[0] for version in versions.values()}
    if len(majors) != 1:
        raise InputError(f"Capacitor packages of different major versions are installed: {versions}")
    slug = re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()).strip("-") or "app"
    return {
        "name": slug,
        "version": spec.version,
        "private": True,
        "dependencies": {f"@capacitor/{name}": versions[name] for name in ("core", *PLATFORMS)},
        "devDependencies": {"@capacitor/cli": versions["cli"]},
    }


def generate(spec: ShellSpec, dest: Path, platforms: Sequence[str]) -> Path:
    """Write the Capacitor project for ``platforms`` into ``dest`` (replaced if it exists)."""
    spec.check()
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown or not platforms:
        raise InputError(
            f"platform must be one of {', '.join(PLATFORMS)} (got {', '.join(platforms) or 'none'})"
        )
    cap = tool_script(TOOLS, "@capacitor/cli", "bin/capacitor")
    assets = tool_script(TOOLS, "@capacitor/assets", "bin/capacitor-assets")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / "package.json").write_text(json.dumps(package_manifest(spec), indent=2) + "\n")
    (dest / "capacitor.config.json").write_text(json.dumps(capacitor_config(spec), indent=2) + "\n")
    (dest / ".gitignore").write_text("node_modules/\n")
    if spec.server_url:
        (dest / WEB_DIR).mkdir()
        (dest / WEB_DIR / "index.html").write_text(FALLBACK_PAGE.format(name=spec.name))
    else:
        assert spec.web_dir is not None
        shutil.copytree(spec.web_dir, dest / WEB_DIR)
    (dest / "assets").mkdir()
    if spec.icon is not None:
        shutil.copyfile(spec.icon, dest / "assets" / "logo.png")
    else:
        icons.solid_png(dest / "assets" / "logo.png", 1024, "#3b5bdb")
    # The CLI resolves the platform packages from the project; link the tool folder's while generating.
    link = dest / "node_modules"
    link.symlink_to(TOOLS / "node_modules", target_is_directory=True)
    try:
        for platform in platforms:
            run_node(cap, ["add", platform], cwd=dest, what=f"capacitor add {platform}")
        run_node(
            assets,
            [
                "generate",
                *(f"--{platform}" for platform in platforms),
                "--iconBackgroundColor",
                spec.background,
                "--splashBackgroundColor",
                spec.background,
            ],
            cwd=dest,
            what="capacitor-assets generate",
        )
    finally:
        link.unlink()
    write_eas_json(dest, platforms)
    return dest
