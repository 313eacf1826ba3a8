"""Store-account credentials the mobile and desktop pipelines read from the vault, and the check
that names every missing one before a pipeline starts.

They live in the vault scope ``user:<owner>`` (one Apple key, one Play service account, one Expo
token per owner, shared by the owner's apps); desktop updater keys live in ``app:<app id>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import InputError


class SecretReader(Protocol):
    def get_optional(self, scope: str, name: str) -> str | None: ...


@dataclass(frozen=True)
class Credential:
    name: str  # the vault name
    what: str  # what a person must supply
    option: str  # the CLI option that stores it


EXPO_TOKEN = Credential("expo_token", "an Expo access token (expo.dev > Account settings > Access tokens)",
                        "--expo-token")
APPLE_KEY_ID = Credential("apple_asc_key_id", "the App Store Connect API key id", "--apple-key-id")
APPLE_ISSUER_ID = Credential("apple_asc_issuer_id", "the App Store Connect issuer id", "--apple-issuer-id")
APPLE_PRIVATE_KEY = Credential(
    "apple_asc_private_key",
    "the App Store Connect API key file AuthKey_<id>.p8 (Users and Access > Integrations; needs an Apple "
    "Developer Program membership, $99/year)",
    "--apple-key-file",
)
PLAY_SERVICE_ACCOUNT = Credential(
    "google_play_service_account",
    "a Google Play service account key file (JSON, with release access in Play Console; needs a Play "
    "developer account, $25 once)",
    "--play-service-account",
)
GITHUB_TOKEN = Credential(
    "github_token", "a GitHub token with repo and workflow access to the CI repository", "--github-token"
)
APPLE_KEY = (APPLE_KEY_ID, APPLE_ISSUER_ID, APPLE_PRIVATE_KEY)

UPDATER_PRIVATE_KEY = "tauri_updater_private_key"
UPDATER_PASSWORD = "tauri_updater_key_password"
UPDATER_PUBLIC_KEY = "tauri_updater_public_key"


def owner_scope(owner: str) -> str:
    return f"user:{owner}"


def app_scope(app_id: str) -> str:
    return f"app:{app_id}"


def mobile_requirements(platform: str, submit: str | None) -> list[Credential]:
    needed = [EXPO_TOKEN]
    if platform == "ios" and submit:
        needed += APPLE_KEY
    if platform == "android" and submit:
        needed.append(PLAY_SERVICE_ACCOUNT)
    return needed


def require(vault: SecretReader, scope: str, needed: Iterable[Credential], *, for_what: str) -> None:
    """One InputError naming every missing credential and how to supply it."""
    missing = [c for c in needed if not vault.get_optional(scope, c.name)]
    if missing:
        items = "; ".join(f"{c.what} (give it with {c.option})" for c in missing)
        raise InputError(f"cannot start {for_what}: missing {len(missing)} prerequisite(s): {items}")


def validate_submit(platform: str, submit: str | None) -> None:
    allowed: dict[str, Any] = {"ios": ("testflight",), "android": ("internal",)}
    if platform not in allowed:
        raise InputError(f"--platform must be ios or android (got {platform!r})")
    if submit is not None and submit not in allowed[platform]:
        raise InputError(
            f"--submit {submit} does not go with --platform {platform}: "
            f"use {allowed[platform][0]} (or leave --submit out to only build)"
        )
