"""Store-account credentials the mobile and desktop pipelines read from the vault, and the check
that names every missing one before a pipeline starts.

They are looked up in the app's own vault scope (its id, where ``launchdeck vault set`` and the CLI
options put them) and then in ``user:<owner>`` (one Apple key, Play service account or Expo token
shared by all of an owner's apps). Desktop updater keys live in the app's scope.
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


EXPO_TOKEN = Credential(
    "expo_token", "an Expo access token (expo.dev > Account settings > Access tokens)", "--expo-token"
)
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
    """The app's own scope: the same one the engine API's ``PUT /api/apps/{app}/secrets`` writes."""
    return app_id


def lookup(vault: SecretReader, scopes: Iterable[str], name: str) -> str | None:
    for scope in scopes:
        value = vault.get_optional(scope, name)
        if value:
            return value
    return None


def get(vault: SecretReader, scopes: Iterable[str], credential: Credential) -> str:
    scopes = list(scopes)
    value = lookup(vault, scopes, credential.name)
    if value is None:
        raise InputError(f"missing {credential.what} (give it with {credential.option})")
    return value


def mobile_requirements(platform: str, submit: str | None) -> list[Credential]:
    needed = [EXPO_TOKEN]
    if platform == "ios" and submit:
        needed += APPLE_KEY
    if platform == "android" and submit:
        needed.append(PLAY_SERVICE_ACCOUNT)
    return needed


def missing(present: Iterable[str], needed: Iterable[Credential]) -> list[Credential]:
    names = set(present)
    return [c for c in needed if c.name not in names]


def require(
    vault: SecretReader, scopes: Iterable[str], needed: Iterable[Credential], *, for_what: str
) -> None:
    """One InputError naming every missing credential and how to supply it."""
    scopes = list(scopes)
    absent = [c for c in needed if lookup(vault, scopes, c.name) is None]
    report_missing(absent, for_what=for_what)


def report_missing(missing: list[Credential], *, for_what: str) -> None:
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
