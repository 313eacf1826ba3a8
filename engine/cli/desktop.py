"""``launchdeck desktop APP --targets windows,macos,linux --repo owner/name``.

Mount with ``app.command("desktop")(engine.cli.desktop.desktop)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.mobile import default_bundle_id, run_pipeline
from engine.desktop.targets import parse_targets
from engine.errors import LaunchdeckError
from engine.mobile import credentials as creds


def desktop(
    app_name: Annotated[
        str, typer.Argument(metavar="APP", help="the app, deployed with `launchdeck deploy`")
    ],
    targets: Annotated[
        str, typer.Option(help="comma-separated: windows, macos, linux")
    ] = "windows,macos,linux",
    repo: Annotated[str, typer.Option(help="CI repository on GitHub, owner/name")] = "",
    identifier: Annotated[
        str | None, typer.Option(help="reverse-DNS id; default com.launchdeck.<app>")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="product name; default the app folder's package name, else APP")
    ] = None,
    version: Annotated[str, typer.Option(help="MAJOR.MINOR.PATCH")] = "1.0.0",
    server_url: Annotated[
        str | None, typer.Option(help="live URL to load; default the app's deployment URL")
    ] = None,
    web_dir: Annotated[
        Path | None, typer.Option(help="static export to bundle instead of a live URL")
    ] = None,
    app_dir: Annotated[
        Path | None, typer.Option(help="the app's folder: name, icon and static export")
    ] = None,
    icon: Annotated[Path | None, typer.Option(help="square PNG icon, 512x512 or larger")] = None,
    git_remote: Annotated[
        str | None, typer.Option(help="push URL; default https://github.com/<repo>.git")
    ] = None,
    updater_endpoint: Annotated[
        str | None, typer.Option(help="latest.json URL; default the repo's releases")
    ] = None,
    github_token: Annotated[
        str | None, typer.Option(envvar="GITHUB_TOKEN", help="token with repo+workflow")
    ] = None,
    wait: Annotated[bool, typer.Option(help="follow the deployment to its end")] = True,
) -> None:
    """Build the app as a Tauri desktop app for Windows, macOS and Linux on CI runners."""
    from engine.cli.common import fail
    from engine.mobile.app_source import shell_source
    from pipelines.desktop import check_params

    params: dict[str, Any] = {
        "app": app_name,
        "targets": targets,
        "repo": repo,
        "identifier": identifier or default_bundle_id(app_name),
        "name": name,
        "version": version,
        "server_url": server_url,
        "web_dir": str(web_dir.resolve()) if web_dir else None,
        "icon": str(icon.resolve()) if icon else None,
        "app_dir": str(app_dir.resolve()) if app_dir else None,
        "git_remote": git_remote,
        "updater_endpoint": updater_endpoint,
    }
    try:
        parse_targets(targets)
        params = shell_source(params)
    except LaunchdeckError as exc:
        fail(str(exc))
    run_pipeline(
        app_name, "desktop", params, {creds.GITHUB_TOKEN.name: github_token}, wait=wait, check=check_params
    )
