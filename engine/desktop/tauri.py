"""Generate a Tauri 2 project with the real Tauri CLI (offline, from the tool folder).

``tauri init`` writes ``src-tauri``; ``tauri icon`` makes every icon from the app's; the updater plugin
is added with a key pair from ``tauri signer generate``; ``tauri.conf.json`` is validated against the
schema the CLI ships (the same file as ``shared/specs/tauri/config.schema.json``).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import tomlkit

from engine.desktop.targets import BUNDLES, bundle_targets
from engine.desktop.workflow import WORKFLOW_PATH, workflow_yaml
from engine.errors import InputError, TerminalError
from engine.mobile import icon as icons
from engine.mobile.capacitor import BUNDLE_ID
from engine.nodetools import installed_version, run_node, tool_script

TOOLS = Path(__file__).resolve().parent / "node"
UPDATER_CRATE = "tauri-plugin-updater"
UPDATER_PLUGIN = ".plugin(tauri_plugin_updater::Builder::new().build())"
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
FALLBACK_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><title>{name}</title></head>'
    "<body><p>{name}</p></body></html>\n"
)


@dataclass(frozen=True)
class UpdaterKeys:
    """A minisign key pair from ``tauri signer generate``; the private key is encrypted by ``password``."""

    private_key: str
    public_key: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return f"UpdaterKeys(public_key={self.public_key[:16]}...)"


@dataclass(frozen=True)
class DesktopSpec:
    identifier: str
    name: str
    targets: tuple[str, ...]
    updater_endpoint: str
    version: str = "1.0.0"
    server_url: str | None = None
    web_dir: Path | None = None
    icon: Path | None = None

    def check(self) -> None:
        problems: list[str] = []
        if not BUNDLE_ID.match(self.identifier):
            problems.append(f"identifier {self.identifier!r} must be reverse-DNS like com.example.app")
        if not self.name.strip():
            problems.append("the app name is empty")
        if not SEMVER.match(self.version):
            problems.append(f"version {self.version!r} must be MAJOR.MINOR.PATCH")
        if not self.targets or any(t not in BUNDLES for t in self.targets):
            problems.append(f"targets must be a subset of {', '.join(BUNDLES)}")
        if urlparse(self.updater_endpoint).scheme != "https":
            problems.append(f"updater endpoint {self.updater_endpoint!r} must be an https URL")
        if self.server_url is not None:
            if urlparse(self.server_url).scheme not in ("http", "https"):
                problems.append(f"server URL {self.server_url!r} must be an absolute http(s) URL")
        elif self.web_dir is None:
            problems.append("give the app's live URL or a static export directory (neither was given)")
        elif not (self.web_dir / "index.html").is_file():
            problems.append(f"static export {self.web_dir} has no index.html")
        if self.icon is not None:
            try:
                width, height = icons.png_size(self.icon)
                if width != height or width < 512:
                    problems.append(
                        f"icon {self.icon} is {width}x{height}: give a square PNG of 512x512 or more"
                    )
            except (InputError, OSError) as exc:
                problems.append(str(exc))
        if problems:
            raise InputError("cannot generate the desktop project: " + "; ".join(problems))


def _cli() -> Path:
    return tool_script(TOOLS, "@tauri-apps/cli", "tauri.js")


@lru_cache(maxsize=1)
def config_validator() -> jsonschema.Draft7Validator:
    schema_path = TOOLS / "node_modules" / "@tauri-apps" / "cli" / "config.schema.json"
    _cli()  # a clear error when the tool folder is not installed
    return jsonschema.Draft7Validator(json.loads(schema_path.read_text()))


def validate_config(config: dict[str, Any], validator: jsonschema.Draft7Validator | None = None) -> None:
    errors = list((validator or config_validator()).iter_errors(config))
    if errors:
        raise InputError(
            "tauri.conf.json is invalid: "
            + "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors)
        )


def generate_updater_keys() -> UpdaterKeys:
    """A fresh key pair, made by the Tauri CLI in a private temporary directory that is then removed."""
    password = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="launchdeck-signer-") as tmp:
        key_file = Path(tmp) / "updater.key"
        run_node(
            _cli(),
            # "--password=<value>": a generated password may start with "-", which would read as a flag.
            ["signer", "generate", "--ci", f"--password={password}", "--write-keys", str(key_file)],
            cwd=Path(tmp),
            what="tauri signer generate",
        )
        return UpdaterKeys(
            private_key=key_file.read_text().strip(),
            public_key=Path(f"{key_file}.pub").read_text().strip(),
            password=password,
        )


def tauri_config(base: dict[str, Any], spec: DesktopSpec, public_key: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(json.dumps(base))
    config["productName"] = spec.name
    config["version"] = spec.version
    config["identifier"] = spec.identifier
    config["build"]["frontendDist"] = spec.server_url or "../dist"
    if not spec.server_url:
        config["build"].pop("devUrl", None)
    for window in config["app"]["windows"]:
        window["title"] = spec.name
    config["bundle"]["targets"] = bundle_targets(spec.targets)
    config["bundle"]["createUpdaterArtifacts"] = True
    config.setdefault("plugins", {})["updater"] = {"pubkey": public_key, "endpoints": [spec.updater_endpoint]}
    return config


def _add_updater_crate(src_tauri: Path) -> None:
    manifest = src_tauri / "Cargo.toml"
    document = tomlkit.parse(manifest.read_text())
    dependencies: Any = document["dependencies"]
    dependencies[UPDATER_CRATE] = "2"
    manifest.write_text(tomlkit.dumps(document))
    lib = src_tauri / "src" / "lib.rs"
    source = lib.read_text()
    anchor = "tauri::Builder::default()"
    if anchor not in source:
        raise TerminalError(f"the Tauri CLI's lib.rs template changed: {anchor!r} not found in {lib}")
    lib.write_text(source.replace(anchor, f"{anchor}\n    {UPDATER_PLUGIN}", 1))
    capability = src_tauri / "capabilities" / "default.json"
    granted = json.loads(capability.read_text())
    if "updater:default" not in granted["permissions"]:
        granted["permissions"].append("updater:default")
    capability.write_text(json.dumps(granted, indent=2) + "\n")


def generate(spec: DesktopSpec, dest: Path, public_key: str) -> Path:
    """Write the Tauri project into ``dest`` (replaced if it exists); returns ``dest``."""
    spec.check()
    cli = _cli()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    slug = re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()).strip("-") or "app"
    if spec.web_dir is not None and spec.server_url is None:
        shutil.copytree(spec.web_dir, dest / "dist")
    else:
        (dest / "dist").mkdir()
        (dest / "dist" / "index.html").write_text(FALLBACK_PAGE.format(name=spec.name))
    init = [
        "init",
        "--ci",
        "--app-name",
        slug,
        "--window-title",
        spec.name,
        "--frontend-dist",
        "../dist",
        "--before-dev-command",
        "",
        "--before-build-command",
        "",
    ]
    if spec.server_url:
        init += ["--dev-url", spec.server_url]
    run_node(cli, init, cwd=dest, what="tauri init")
    icon = spec.icon or icons.solid_png(dest / "app-icon.png", 512, "#3b5bdb")
    run_node(cli, ["icon", str(icon)], cwd=dest, what="tauri icon")
    src_tauri = dest / "src-tauri"
    conf_path = src_tauri / "tauri.conf.json"
    config = tauri_config(json.loads(conf_path.read_text()), spec, public_key)
    validate_config(config)
    conf_path.write_text(json.dumps(config, indent=2) + "\n")
    _add_updater_crate(src_tauri)
    manifest = {
        "name": slug,
        "version": spec.version,
        "private": True,
        "scripts": {"tauri": "tauri"},
        "devDependencies": {"@tauri-apps/cli": installed_version(TOOLS, "@tauri-apps/cli")},
    }
    (dest / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (dest / ".gitignore").write_text("node_modules/\nsrc-tauri/target/\n")
    workflow = dest / WORKFLOW_PATH
    workflow.parent.mkdir(parents=True)
    workflow.write_text(workflow_yaml(spec.targets))
    return dest


def installed_targets(project: Path) -> Sequence[str]:
    """The bundle targets a generated project's tauri.conf.json asks for."""
    config = json.loads((project / "src-tauri" / "tauri.conf.json").read_text())
    return list(config["bundle"]["targets"])
