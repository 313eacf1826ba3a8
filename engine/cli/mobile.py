"""``launchdeck mobile APP --platform ios|android [--submit testflight|internal]``.

Store credentials given as options are put in the app's vault scope through the engine API (never
printed); the pipeline's first step then names every prerequisite still missing before anything runs.
Mount with ``app.command("mobile")(engine.cli.mobile.mobile)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.errors import InputError, LaunchdeckError, NotFound
from engine.mobile import credentials as creds


def read_file(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist")
    return path.read_text()


def default_bundle_id(app_name: str) -> str:
    return "com.launchdeck." + re.sub(r"[^a-z0-9]", "", app_name.lower())


def run_pipeline(
    app_name: str,
    pipeline: str,
    params: dict[str, Any],
    secrets: dict[str, str | None],
    *,
    wait: bool,
    check: Callable[[dict[str, Any]], None],
) -> None:
    """Default the live URL to the app's, check the parameters, store the given secrets, start the
    pipeline on the engine and follow it to its end."""
    from engine.cli.common import engine_client, fail, render_status

    with engine_client() as client:
        try:
            app = client.app(app_name)
        except NotFound:
            fail(
                f"no app named {app_name!r}: deploy its web app first (`launchdeck deploy`); "
                "the shell points at its live URL"
            )
        if not params.get("server_url") and not params.get("web_dir"):
            if not app.get("deployment_url"):
                fail(
                    f"app {app_name!r} has no live URL yet: give --server-url or a static export with --web-dir"
                )
            params["server_url"] = app["deployment_url"]
        try:
            check(params)
        except LaunchdeckError as exc:
            fail(str(exc))
        for name, value in secrets.items():
            if value:
                client.put_secret(app_name, name, value.strip())
        deployment_id = client.start_pipeline(app_name, pipeline, params)
        typer.echo(f"deployment {deployment_id} started; `launchdeck status {deployment_id}` follows it")
        if not wait:
            return
        status = client.wait(deployment_id, poll=1.0)
        typer.echo(render_status(status))
        if status["deployment"]["status"] != "succeeded":
            raise typer.Exit(1)


def mobile(
    app_name: Annotated[
        str, typer.Argument(metavar="APP", help="the app, deployed with `launchdeck deploy`")
    ],
    platform: Annotated[str, typer.Option("--platform", help="ios or android")],
    submit: Annotated[
        str | None, typer.Option(help="testflight (ios) or internal (android); omit to only build")
    ] = None,
    eas_project: Annotated[str, typer.Option(help="the EAS project, @account/slug")] = "",
    bundle_id: Annotated[
        str | None, typer.Option(help="reverse-DNS id; default com.launchdeck.<app>")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="display name; default the app folder's package name, else APP")
    ] = None,
    version: Annotated[str, typer.Option(help="app version shown in the stores")] = "1.0.0",
    server_url: Annotated[
        str | None, typer.Option(help="live URL to load; default the app's deployment URL")
    ] = None,
    web_dir: Annotated[
        Path | None, typer.Option(help="static export to bundle instead of a live URL")
    ] = None,
    app_dir: Annotated[
        Path | None, typer.Option(help="the app's folder: name, icon and static export")
    ] = None,
    icon: Annotated[Path | None, typer.Option(help="square PNG icon, 1024x1024 or larger")] = None,
    beta_group: Annotated[
        str, typer.Option(help="TestFlight beta group (created if missing)")
    ] = "Launchdeck",
    expo_token: Annotated[str | None, typer.Option(envvar="EXPO_TOKEN", help="Expo access token")] = None,
    apple_key_id: Annotated[str | None, typer.Option(help="App Store Connect API key id")] = None,
    apple_issuer_id: Annotated[str | None, typer.Option(help="App Store Connect issuer id")] = None,
    apple_key_file: Annotated[Path | None, typer.Option(help="App Store Connect AuthKey_<id>.p8")] = None,
    play_service_account: Annotated[Path | None, typer.Option(help="Play service account key (JSON)")] = None,
    wait: Annotated[bool, typer.Option(help="follow the deployment to its end")] = True,
) -> None:
    """Build the app as an iOS or Android shell on EAS, and send it to TestFlight or Play's internal track."""
    from engine.cli.common import fail
    from engine.mobile.app_source import shell_source
    from pipelines.mobile import check_params

    params: dict[str, Any] = {
        "app": app_name,
        "platform": platform,
        "submit": submit,
        "eas_project": eas_project,
        "bundle_id": bundle_id or default_bundle_id(app_name),
        "name": name,
        "version": version,
        "server_url": server_url,
        "web_dir": str(web_dir.resolve()) if web_dir else None,
        "icon": str(icon.resolve()) if icon else None,
        "app_dir": str(app_dir.resolve()) if app_dir else None,
        "beta_group": beta_group,
    }
    try:
        secrets = {
            creds.EXPO_TOKEN.name: expo_token,
            creds.APPLE_KEY_ID.name: apple_key_id,
            creds.APPLE_ISSUER_ID.name: apple_issuer_id,
            creds.APPLE_PRIVATE_KEY.name: read_file(apple_key_file, "App Store Connect key file"),
            creds.PLAY_SERVICE_ACCOUNT.name: read_file(play_service_account, "Play service account file"),
        }
        creds.validate_submit(platform, submit)
        params = shell_source(params)
    except LaunchdeckError as exc:
        fail(str(exc))
    run_pipeline(app_name, "mobile", params, secrets, wait=wait, check=check_params)
