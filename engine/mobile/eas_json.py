"""``eas.json`` for a Capacitor shell: build and submit profiles, validated against EAS's own schema.

The schema is a copy of expo/eas-cli ``packages/eas-json/schema/eas.schema.json`` (see
``schemas/``); a test checks it matches the copy in the shared specs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from engine.errors import InputError

SCHEMA = Path(__file__).resolve().parent / "schemas" / "eas.schema.json"
PROFILE = "production"
ANDROID_ARCHIVE = "android/app/build/outputs/bundle/release/app-release.aab"
IOS_SCHEME = "App"


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def eas_config(platforms: Sequence[str]) -> dict[str, Any]:
    profile: dict[str, Any] = {"distribution": "store", "node": "20.19.0"}
    if "android" in platforms:
        profile["android"] = {
            "buildType": "app-bundle",
            "gradleCommand": ":app:bundleRelease",
            "applicationArchivePath": ANDROID_ARCHIVE,
        }
    if "ios" in platforms:
        profile["ios"] = {"scheme": IOS_SCHEME, "buildConfiguration": "Release"}
    submit: dict[str, Any] = {}
    if "android" in platforms:
        submit["android"] = {"track": "internal", "releaseStatus": "completed"}
    if "ios" in platforms:
        submit["ios"] = {"groups": []}
    return {
        "cli": {"version": ">=16.0.0", "appVersionSource": "local"},
        "build": {PROFILE: profile},
        "submit": {PROFILE: submit},
    }


def validate_eas_config(config: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise InputError(
            "eas.json is invalid: "
            + "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors)
        )


def write_eas_json(project: Path, platforms: Sequence[str]) -> dict[str, Any]:
    config = eas_config(platforms)
    validate_eas_config(config)
    (project / "eas.json").write_text(json.dumps(config, indent=2) + "\n")
    return config
