"""The mobile pipeline: a Capacitor shell built by EAS, sent to TestFlight or Play's internal track.

Params: ``platform`` (ios|android), ``submit`` (testflight|internal|None), ``bundle_id``, ``name``,
``version``, ``server_url`` (the app's live URL) or ``web_dir`` (a static export), ``icon``,
``eas_project`` (``@account/slug``), ``beta_group`` (TestFlight), ``owner``, and ``app_dir`` (the
generated app's folder: its name, icon and static export are used where not given).
Outputs in ``ctx.state``: project_dir, bucket_key, build (id, status, artifact URL, minutes),
testflight or play results, and ``cost_readings`` (see engine/mobile/costs.py).
"""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from engine.errors import Cancelled, InputError, ProviderError, ProviderUnavailable, StepTimeout
from engine.mobile import app_source, capacitor, costs
from engine.mobile import credentials as creds
from engine.mobile.eas_json import ANDROID_ARCHIVE, IOS_SCHEME, PROFILE
from engine.providers.app_store_connect import AppStoreConnectClient
from engine.providers.eas import AscApiKey, BuildFailed, EasClient, build_minutes
from engine.providers.google_play import GooglePlayClient
from engine.runner import Step, StepContext
from pipelines.services import app_owner, build_dir_of, services_of


def _scopes(ctx: StepContext) -> list[str]:
    return [creds.app_scope(ctx.app_id), creds.owner_scope(app_owner(ctx))]


def _secret(ctx: StepContext, credential: creds.Credential) -> str:
    return creds.get(services_of(ctx).vault, _scopes(ctx), credential)


def _eas(ctx: StepContext) -> EasClient:
    return EasClient(_secret(ctx, creds.EXPO_TOKEN), base_url=services_of(ctx).settings.expo_api_url)


def _asc_key(ctx: StepContext) -> AscApiKey:
    return AscApiKey(
        _secret(ctx, creds.APPLE_KEY_ID),
        _secret(ctx, creds.APPLE_ISSUER_ID),
        _secret(ctx, creds.APPLE_PRIVATE_KEY),
    )


def shell_spec(params: dict[str, Any]) -> capacitor.ShellSpec:
    params = app_source.shell_source(params)
    return capacitor.ShellSpec(
        bundle_id=str(params["bundle_id"]),
        name=str(params.get("name") or params["app"]),
        version=str(params.get("version") or "1.0.0"),
        server_url=params.get("server_url"),
        web_dir=Path(params["web_dir"]) if params.get("web_dir") else None,
        icon=Path(params["icon"]) if params.get("icon") else None,
    )


def check_params(params: dict[str, Any]) -> None:
    """Everything knowable without the vault: flags, bundle id, URL or export, icon."""
    creds.validate_submit(str(params.get("platform")), params.get("submit"))
    if not str(params.get("eas_project") or "").startswith("@"):
        raise InputError("give the EAS project as @account/slug (--eas-project); create it at expo.dev")
    shell_spec(params).check()


# -- steps --------------------------------------------------------------------------------------------


def check_prerequisites(ctx: StepContext) -> str:
    check_params(ctx.params)
    platform, submit = ctx.params["platform"], ctx.params.get("submit")
    creds.require(
        services_of(ctx).vault,
        _scopes(ctx),
        creds.mobile_requirements(platform, submit),
        for_what=f"the {platform} build",
    )
    return f"{platform} build" + (f", then {submit}" if submit else "")


def verify_store_access(ctx: StepContext) -> str:
    """Try the store credentials now, so a bad key fails in seconds, not after a paid build."""
    settings, package = services_of(ctx).settings, ctx.params["bundle_id"]
    if ctx.params["submit"] == "testflight":
        asc = AppStoreConnectClient(_asc_key(ctx), base_url=settings.app_store_connect_api_url)
        try:
            ctx.state["asc_app_id"] = asc.find_app(package)
        finally:
            asc.close()
        return f"App Store Connect app {ctx.state['asc_app_id']}"
    play = GooglePlayClient(
        _secret(ctx, creds.PLAY_SERVICE_ACCOUNT),
        base_url=settings.google_play_api_url,
        token_url=settings.google_oauth_token_url,
    )
    try:
        play.delete_edit(package, play.insert_edit(package))  # proves access to this package
    finally:
        play.close()
    return f"Google Play access to {package}"


def generate_project(ctx: StepContext) -> str:
    dest = build_dir_of(ctx, f"mobile-{ctx.params['platform']}")
    capacitor.generate(shell_spec(ctx.params), dest, [ctx.params["platform"]])
    files = sum(1 for path in dest.rglob("*") if path.is_file())
    ctx.progress(files, files, "files", f"Capacitor project in {dest}")
    ctx.state["project_dir"] = str(dest)
    return f"{files} files in {dest}"


def undo_generate_project(ctx: StepContext) -> None:
    if ctx.state.get("project_dir"):
        shutil.rmtree(ctx.state["project_dir"], ignore_errors=True)


def upload_project(ctx: StepContext) -> str:
    project = Path(ctx.state["project_dir"])
    with tempfile.TemporaryDirectory(prefix="launchdeck-eas-") as tmp:
        archive = Path(tmp) / "project.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(project, arcname=".", filter=lambda info: None if "/node_modules" in info.name else info)
        eas = _eas(ctx)
        try:
            ctx.state["eas_app_id"] = eas.app_id(ctx.params["eas_project"])
            ctx.state["bucket_key"] = eas.upload_project(archive)
        finally:
            eas.close()
        size = archive.stat().st_size
    ctx.progress(size, size, "bytes")
    return f"{size} bytes uploaded to EAS"


def eas_build(ctx: StepContext) -> str:
    settings, platform = services_of(ctx).settings, ctx.params["platform"]
    eas = _eas(ctx)
    try:
        build_number = ctx.state.setdefault(
            "build_number", int(ctx.params.get("build_number") or time.time())
        )
        if "build_id" not in ctx.state:  # a retried step re-attaches to its build instead of starting another
            created = eas.create_build(
                platform,
                ctx.state["eas_app_id"],
                ctx.state["bucket_key"],
                profile=PROFILE,
                version=str(ctx.params.get("version") or "1.0.0"),
                build_number=build_number,
                android_archive_path=ANDROID_ARCHIVE,
                ios_scheme=IOS_SCHEME,
            )
            ctx.state["build_id"] = created["id"]
            ctx.log(f"EAS build {created['id']} requested")

        def report(build: dict[str, Any]) -> None:
            ctx.check_cancelled()
            ctx.progress(0, None, "build", f"EAS build {build['status'].lower().replace('_', ' ')}")

        try:
            build = eas.wait_for_build(
                ctx.state["build_id"],
                poll=settings.build_poll_seconds,
                timeout=settings.build_wait_seconds,
                on_status=report,
            )
        except (StepTimeout, Cancelled):
            eas.cancel_build(ctx.state["build_id"])
            ctx.log(f"EAS build {ctx.state['build_id']} cancelled")
            raise
        except BuildFailed:
            # EAS bills a failed build too; the journal keeps its readings since a failed step's
            # state is not kept.
            for reading in costs.eas_build_readings(ctx.app_id, eas.build(ctx.state["build_id"])):
                ctx.log(f"cost reading: {json.dumps(reading)}")
            raise
    finally:
        eas.close()
    ctx.state["cost_readings"] = costs.eas_build_readings(ctx.app_id, build)
    artifact = (build.get("artifacts") or {}).get("applicationArchiveUrl")
    minutes = build_minutes(build)
    ctx.state["build"] = {
        "id": build["id"],
        "status": build["status"],
        "artifact_url": artifact,
        "minutes": minutes,
        "resource_class": build.get("resourceClass"),
    }
    return f"EAS build {build['id']} finished in {minutes} min: {artifact}"


def submit_testflight(ctx: StepContext) -> str:
    settings, key = services_of(ctx).settings, _asc_key(ctx)
    bundle_id, build_number = ctx.params["bundle_id"], str(ctx.state["build_number"])
    asc = AppStoreConnectClient(key, base_url=settings.app_store_connect_api_url)
    eas = _eas(ctx)
    try:
        asc_app = asc.find_app(bundle_id)  # checks the key before EAS is asked to upload with it
        if "submission_id" not in ctx.state:
            submission = eas.submit_ios(
                ctx.state["eas_app_id"], ctx.state["build_id"], asc_app_id=asc_app, key=key
            )
            ctx.state["submission_id"] = submission["id"]
        eas.wait_for_submission(
            ctx.state["submission_id"], poll=settings.build_poll_seconds, timeout=settings.build_wait_seconds
        )
        ctx.progress(1, 3, "stages", "uploaded to App Store Connect; processing")
        build = asc.wait_for_build(
            asc_app, build_number, poll=settings.build_poll_seconds, timeout=settings.build_wait_seconds
        )
        group = asc.beta_group(asc_app, str(ctx.params.get("beta_group") or "Launchdeck"))
        asc.add_build_to_group(group["id"], build["id"])
        ctx.state["testflight"] = {
            "asc_app_id": asc_app,
            "asc_build_id": build["id"],
            "beta_group_id": group["id"],
        }
        ctx.progress(2, 3, "stages", f"build added to beta group {group['attributes']['name']}")
        if not group["attributes"].get("isInternalGroup", True):
            review = asc.submit_for_beta_review(build["id"])
            ctx.state["testflight"]["beta_review"] = review["attributes"].get("betaReviewState")
        ctx.progress(3, 3, "stages")
    finally:
        asc.close()
        eas.close()
    return f"build {build_number} on TestFlight group {group['attributes']['name']}"


def undo_testflight(ctx: StepContext) -> None:
    flight = ctx.state.get("testflight")
    if not flight:
        return
    asc = AppStoreConnectClient(_asc_key(ctx), base_url=services_of(ctx).settings.app_store_connect_api_url)
    try:
        asc.remove_build_from_group(flight["beta_group_id"], flight["asc_build_id"])
    finally:
        asc.close()


def submit_play_internal(ctx: StepContext) -> str:
    settings = services_of(ctx).settings
    package = ctx.params["bundle_id"]
    artifact = ctx.state["build"]["artifact_url"]
    try:
        response = httpx.get(artifact, timeout=300.0, follow_redirects=True)
    except httpx.TransportError as exc:
        raise ProviderUnavailable("eas", f"cannot download the build artifact: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise ProviderError(
            "eas", f"build artifact download answered {response.status_code}", status=response.status_code
        )
    play = GooglePlayClient(
        _secret(ctx, creds.PLAY_SERVICE_ACCOUNT),
        base_url=settings.google_play_api_url,
        token_url=settings.google_oauth_token_url,
    )
    edit_id = None
    try:
        edit_id = play.insert_edit(package)
        version_code = play.upload_bundle(package, edit_id, response.content)
        ctx.progress(len(response.content), len(response.content), "bytes", f"bundle {version_code} uploaded")
        release = f"{ctx.params.get('version') or '1.0.0'} ({version_code})"
        play.update_track(package, edit_id, "internal", [version_code], release_name=release)
        play.commit(package, edit_id)
        committed, edit_id = edit_id, None
    finally:
        if edit_id is not None:  # an uncommitted edit would block the next one: discard it
            try:
                play.delete_edit(package, edit_id)
            except ProviderError:
                ctx.log(f"could not delete Play edit {edit_id}; it expires on its own")
        play.close()
    ctx.state["play"] = {"edit_id": committed, "version_code": version_code, "track": "internal"}
    return f"version {version_code} released to the internal track"


def record_costs(ctx: StepContext) -> str:
    readings = list(ctx.state.get("cost_readings", []))
    if ctx.params.get("submit"):
        readings += costs.store_fee_readings(ctx.app_id, app_owner(ctx), ctx.params["platform"])
    ctx.state["cost_readings"] = readings
    return f"{len(readings)} cost readings"


def steps(params: dict[str, Any]) -> list[Step]:
    pipeline = [
        Step("check-prerequisites", check_prerequisites, timeout=30),
    ]
    if params.get("submit"):
        pipeline.append(Step("verify-store-access", verify_store_access, timeout=120))
    pipeline += [
        Step("generate-project", generate_project, undo_generate_project, timeout=300),
        Step("upload-project", upload_project, timeout=600),
        Step("eas-build", eas_build, timeout=4 * 3600),
    ]
    if params.get("submit") == "testflight":
        pipeline.append(Step("submit-testflight", submit_testflight, undo_testflight, timeout=7200))
    elif params.get("submit") == "internal":
        pipeline.append(Step("submit-play-internal", submit_play_internal, timeout=1800))
    pipeline.append(Step("record-costs", record_costs, timeout=30))
    return pipeline


PIPELINES = {"mobile": steps}
