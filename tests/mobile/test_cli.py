"""``launchdeck mobile`` as a user runs it: through an embedded engine, against the emulators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from engine.apps import get_or_create_app
from engine.cli.mobile import mobile
from engine.config import load_settings
from engine.store import Store
from tests.emulators.eas import EasEmulator
from tests.emulators.google_play import GooglePlayEmulator
from tests.servers.asgi import serve

cli = typer.Typer()
cli.command("mobile")(mobile)
cli.command("noop")(lambda: None)  # two commands, so `mobile` is addressed by name as in launchdeck


@pytest.fixture
def emulators(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[EasEmulator, GooglePlayEmulator]]:
    eas, play = EasEmulator(), GooglePlayEmulator(package="com.acme.demo")
    with serve(eas.app) as eas_url, serve(play.app) as play_url:
        play.token_url = f"{play_url}/token"
        for name, value in {
            "LAUNCHDECK_EXTRA_PIPELINES": "pipelines.mobile",
            "LAUNCHDECK_EXPO_API_URL": f"{eas_url}/graphql",
            "LAUNCHDECK_GOOGLE_PLAY_API_URL": play_url,
            "LAUNCHDECK_GOOGLE_OAUTH_TOKEN_URL": play.token_url,
            "LAUNCHDECK_BUILD_POLL_SECONDS": "0.01",
        }.items():
            monkeypatch.setenv(name, value)
        store = Store(load_settings().store_path)
        app = get_or_create_app(store, "demo", owner="operator")
        store.execute(
            "UPDATE deployed_apps SET deployment_url = ? WHERE id = ?", ["https://demo.acme.dev", app.id]
        )
        store.close()
        yield eas, play


def test_android_internal_release_from_the_command_line(
    emulators: tuple[EasEmulator, GooglePlayEmulator], tmp_path: Path
) -> None:
    eas, play = emulators
    account = tmp_path / "play.json"
    account.write_text(play.service_account_json())
    result = CliRunner().invoke(
        cli,
        [
            "mobile",
            "demo",
            "--platform",
            "android",
            "--submit",
            "internal",
            "--eas-project",
            "@acme/demo",
            "--bundle-id",
            "com.acme.demo",
            "--expo-token",
            eas.token,
            "--play-service-account",
            str(account),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "submit-play-internal" in result.output
    assert len(play.committed) == 1
    (job,) = eas.jobs.values()
    assert job["buildProfile"] == "production"
    assert eas.token not in result.output


def test_missing_store_credentials_are_named_and_nothing_is_built(
    emulators: tuple[EasEmulator, GooglePlayEmulator],
) -> None:
    eas, _ = emulators
    result = CliRunner().invoke(
        cli, ["mobile", "demo", "--platform", "ios", "--submit", "testflight", "--eas-project", "@acme/demo"]
    )
    assert result.exit_code == 1
    for option in ("--expo-token", "--apple-key-id", "--apple-issuer-id", "--apple-key-file"):
        assert option in result.output
    assert not eas.recorder.exchanges


def test_wrong_submit_target_is_refused_before_the_engine_is_asked(workspace: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "mobile",
            "demo",
            "--platform",
            "ios",
            "--submit",
            "internal",
            "--eas-project",
            "@acme/demo",
            "--server-url",
            "https://demo.acme.dev",
        ],
    )
    assert result.exit_code == 1
    assert "--submit internal does not go with --platform ios" in result.output
