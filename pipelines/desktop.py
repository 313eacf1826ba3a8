"""The desktop pipeline: a Tauri 2 project built for Windows, macOS and Linux by CI runners.

Params: ``targets`` (list or "windows,macos,linux"), ``identifier``, ``name``, ``version``,
``server_url`` or ``web_dir``, ``icon``, ``app_dir`` (the app's folder), ``repo`` (owner/name on the CI provider), ``git_remote``
(defaults to the repo on github.com), ``branch``, ``updater_endpoint``, ``owner``.
Outputs in ``ctx.state``: updater public key, project_dir, head_sha, run (id, url, conclusion),
``artifacts`` per platform and ``cost_readings``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from engine.desktop import tauri
from engine.desktop.git_push import push_project
from engine.desktop.targets import parse_targets
from engine.desktop.workflow import SIGNING_SECRETS, WORKFLOW_FILE, artifact_name
from engine.errors import Cancelled, InputError, StepTimeout, TerminalError
from engine.mobile import app_source, costs
from engine.mobile import credentials as creds
from engine.providers.github_actions import GitHubActionsClient
from engine.runner import Step, StepContext
from pipelines.services import app_owner, build_dir_of, services_of

DEFAULT_BRANCH = "launchdeck-desktop"


def _repo(params: dict[str, Any]) -> str:
    repo = str(params.get("repo") or "")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise InputError("give the CI repository as owner/name (--repo), e.g. acme/demo-desktop")
    return repo


def desktop_spec(params: dict[str, Any]) -> tauri.DesktopSpec:
    repo = _repo(params)
    params = app_source.shell_source(params)
    return tauri.DesktopSpec(
        identifier=str(params["identifier"]),
        name=str(params.get("name") or params["app"]),
        targets=parse_targets(params.get("targets") or "windows,macos,linux"),
        updater_endpoint=str(
            params.get("updater_endpoint")
            or f"https://github.com/{repo}/releases/latest/download/latest.json"
        ),
        version=str(params.get("version") or "1.0.0"),
        server_url=params.get("server_url"),
        web_dir=Path(params["web_dir"]) if params.get("web_dir") else None,
        icon=Path(params["icon"]) if params.get("icon") else None,
    )


def check_params(params: dict[str, Any]) -> None:
    desktop_spec(params).check()


def _scopes(ctx: StepContext) -> list[str]:
    return [creds.app_scope(ctx.app_id), creds.owner_scope(app_owner(ctx))]


def _github(ctx: StepContext) -> GitHubActionsClient:
    token = creds.get(services_of(ctx).vault, _scopes(ctx), creds.GITHUB_TOKEN)
    return GitHubActionsClient(token, base_url=services_of(ctx).settings.github_api_url)


# -- steps --------------------------------------------------------------------------------------------


def check_prerequisites(ctx: StepContext) -> str:
    check_params(ctx.params)
    creds.require(services_of(ctx).vault, _scopes(ctx), [creds.GITHUB_TOKEN], for_what="the desktop build")
    return ", ".join(parse_targets(ctx.params.get("targets") or "windows,macos,linux"))


def updater_keys(ctx: StepContext) -> str:
    """The app's updater key pair: made once and kept, since installed copies trust only its public key."""
    vault, scope = services_of(ctx).vault, creds.app_scope(ctx.app_id)
    public = vault.get_optional(scope, creds.UPDATER_PUBLIC_KEY)
    if public is None or vault.get_optional(scope, creds.UPDATER_PRIVATE_KEY) is None:
        keys = tauri.generate_updater_keys()
        vault.put(scope, creds.UPDATER_PRIVATE_KEY, keys.private_key)
        vault.put(scope, creds.UPDATER_PASSWORD, keys.password)
        vault.put(scope, creds.UPDATER_PUBLIC_KEY, keys.public_key)
        public, made = keys.public_key, "new"
    else:
        made = "existing"
    ctx.state["updater_public_key"] = public
    return f"{made} updater signing key pair"


def generate_project(ctx: StepContext) -> str:
    dest = build_dir_of(ctx, "desktop")
    tauri.generate(desktop_spec(ctx.params), dest, ctx.state["updater_public_key"])
    files = sum(1 for path in dest.rglob("*") if path.is_file())
    ctx.progress(files, files, "files", f"Tauri project in {dest}")
    ctx.state["project_dir"] = str(dest)
    return f"{files} files, bundles {', '.join(tauri.installed_targets(dest))}"


def undo_generate_project(ctx: StepContext) -> None:
    if ctx.state.get("project_dir"):
        shutil.rmtree(ctx.state["project_dir"], ignore_errors=True)


def push(ctx: StepContext) -> str:
    repo = _repo(ctx.params)
    vault = services_of(ctx).vault
    token = creds.get(vault, _scopes(ctx), creds.GITHUB_TOKEN)
    remote = str(ctx.params.get("git_remote") or f"https://github.com/{repo}.git")
    branch = str(ctx.params.get("branch") or DEFAULT_BRANCH)
    sha = push_project(
        Path(ctx.state["project_dir"]),
        remote,
        branch,
        token=token,
        message=f"Launchdeck desktop build {ctx.deployment_id}",
    )
    ctx.state.update(head_sha=sha, branch=branch)
    app_scope = creds.app_scope(ctx.app_id)
    github = _github(ctx)
    try:
        private_key, password = (
            vault.get(app_scope, creds.UPDATER_PRIVATE_KEY),
            vault.get(app_scope, creds.UPDATER_PASSWORD),
        )
        for name, value in zip(SIGNING_SECRETS, (private_key, password), strict=True):
            github.set_secret(repo, name, value)
    finally:
        github.close()
    return f"commit {sha[:12]} on {branch}; signing secrets set"


def ci_build(ctx: StepContext) -> str:
    settings, repo = services_of(ctx).settings, _repo(ctx.params)
    github = _github(ctx)
    try:
        if "run_id" not in ctx.state:
            tag = f"v{ctx.params.get('version') or '1.0.0'}"
            github.dispatch(repo, WORKFLOW_FILE, ctx.state["branch"], {"release_tag": tag})
            run = github.find_run(
                repo,
                WORKFLOW_FILE,
                ctx.state["head_sha"],
                poll=settings.build_poll_seconds,
                timeout=min(300.0, settings.build_wait_seconds),
            )
            ctx.state["run_id"] = run["id"]
            ctx.log(f"CI run {run['id']}: {run.get('html_url')}")

        def report(run: dict[str, Any]) -> None:
            ctx.check_cancelled()
            ctx.progress(0, None, "run", f"CI run {run['status'].replace('_', ' ')}")

        try:
            run = github.wait_for_run(
                repo,
                ctx.state["run_id"],
                poll=settings.build_poll_seconds,
                timeout=settings.build_wait_seconds,
                on_status=report,
            )
        except (StepTimeout, Cancelled):
            github.cancel_run(repo, ctx.state["run_id"])
            ctx.log(f"CI run {ctx.state['run_id']} cancelled")
            raise
    finally:
        github.close()
    ctx.state["run"] = {"id": run["id"], "url": run.get("html_url"), "conclusion": run["conclusion"]}
    targets = list(parse_targets(ctx.params.get("targets") or "windows,macos,linux"))
    ctx.state["cost_readings"] = costs.ci_run_readings(ctx.app_id, run, targets)
    return f"CI run {run['id']} succeeded"


def record_artifacts(ctx: StepContext) -> str:
    repo = _repo(ctx.params)
    github = _github(ctx)
    try:
        found = {a["name"]: a for a in github.artifacts(repo, ctx.state["run_id"])}
    finally:
        github.close()
    artifacts: dict[str, Any] = {}
    for target in parse_targets(ctx.params.get("targets") or "windows,macos,linux"):
        artifact = found.get(artifact_name(target))
        if artifact is None:
            raise TerminalError(f"CI run {ctx.state['run_id']} produced no {artifact_name(target)} artifact")
        artifacts[target] = {
            "name": artifact["name"],
            "bytes": artifact["size_in_bytes"],
            "url": artifact["archive_download_url"],
        }
    ctx.state["artifacts"] = artifacts
    return ", ".join(f"{t}: {a['bytes']} bytes" for t, a in artifacts.items())


def steps(params: dict[str, Any]) -> list[Step]:
    return [
        Step("check-prerequisites", check_prerequisites, timeout=30),
        Step("updater-keys", updater_keys, timeout=60),
        Step("generate-project", generate_project, undo_generate_project, timeout=300),
        Step("push-project", push, timeout=600),
        Step("ci-build", ci_build, timeout=4 * 3600),
        Step("record-artifacts", record_artifacts, timeout=120),
    ]


PIPELINES = {"desktop": steps}
