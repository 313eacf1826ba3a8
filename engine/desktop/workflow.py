"""The GitHub Actions workflow written into a generated Tauri project: one job per desktop platform.

Built as data and dumped with PyYAML, so it is valid YAML by construction. Builds use
``tauri-apps/tauri-action``, which signs updater artifacts with the key pair kept in the vault (set
as repository secrets) and uploads ``latest.json`` for the updater plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from engine.desktop.targets import BUNDLES, RUNNERS

WORKFLOW_FILE = "desktop.yml"
WORKFLOW_PATH = f".github/workflows/{WORKFLOW_FILE}"
SIGNING_SECRETS = ("TAURI_SIGNING_PRIVATE_KEY", "TAURI_SIGNING_PRIVATE_KEY_PASSWORD")
LINUX_PACKAGES = "libwebkit2gtk-4.1-dev libappindicator3-dev librsvg2-dev patchelf"


def artifact_name(target: str) -> str:
    return f"desktop-{target}"


def workflow(targets: Sequence[str]) -> dict[str, Any]:
    matrix = [
        {
            "platform": target,
            "runner": RUNNERS[target],
            "bundles": ",".join(BUNDLES[target]),
            "args": "--target universal-apple-darwin" if target == "macos" else "",
        }
        for target in targets
    ]
    steps: list[dict[str, Any]] = [
        {"uses": "actions/checkout@v4"},
        {
            "name": "Linux build dependencies",
            "if": "matrix.platform == 'linux'",
            "run": f"sudo apt-get update && sudo apt-get install -y {LINUX_PACKAGES}",
        },
        {"uses": "actions/setup-node@v4", "with": {"node-version": 20}},
        {
            "uses": "dtolnay/rust-toolchain@stable",
            "with": {
                "targets": "${{ matrix.platform == 'macos' && 'aarch64-apple-darwin,x86_64-apple-darwin' || '' }}"
            },
        },
        {"run": "npm install"},
        {
            "uses": "tauri-apps/tauri-action@v0",
            "env": {
                "GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}",
                **{name: f"${{{{ secrets.{name} }}}}" for name in SIGNING_SECRETS},
            },
            "with": {
                "tagName": "${{ inputs.release_tag }}",
                "releaseName": "${{ inputs.release_tag }}",
                "releaseDraft": True,
                "includeUpdaterJson": True,
                "args": "${{ matrix.args }} --bundles ${{ matrix.bundles }}",
            },
        },
        {
            "uses": "actions/upload-artifact@v4",
            "with": {
                "name": "desktop-${{ matrix.platform }}",
                "path": "src-tauri/target/**/release/bundle/**",
            },
        },
    ]
    return {
        "name": "desktop",
        # PyYAML would quote a bare `on` key anyway; GitHub reads the string "on".
        "on": {
            "workflow_dispatch": {
                "inputs": {"release_tag": {"description": "Release tag", "required": True, "type": "string"}}
            }
        },
        "permissions": {"contents": "write"},
        "jobs": {
            "build": {
                "strategy": {"fail-fast": False, "matrix": {"include": matrix}},
                "runs-on": "${{ matrix.runner }}",
                "steps": steps,
            }
        },
    }


def workflow_yaml(targets: Sequence[str]) -> str:
    return yaml.safe_dump(workflow(targets), sort_keys=False, width=200)
