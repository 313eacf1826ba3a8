"""The mobile pipeline end to end on the real runner, against the EAS, App Store Connect and Google
Play emulators: happy paths, a failed build, an invalid key, a rejected submission, a timeout, and
throttling; every exchange checked against the providers' own descriptions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from graphql import parse, validate

from engine.mobile import credentials as creds
from pipelines import mobile
from tests.emulators.app_store_connect import AppStoreConnectEmulator, new_api_key
from tests.emulators.eas import EasEmulator, eas_schema
from tests.emulators.google_play import GooglePlayEmulator
from tests.mobile import play_contract
from tests.mobile.harness import Harness, harness
from tests.providers.contract import check as check_openapi
from tests.servers.asgi import serve

ASC_SPEC = "app-store-connect/app-store-connect-openapi.3.7.0.subset.json"


@dataclass
class Stack:
    eas: EasEmulator
    asc: AppStoreConnectEmulator
    play: GooglePlayEmulator
    h: Harness

    def give_credentials(self, *, apple: bool = True, play: bool = True) -> None:
        scope = creds.owner_scope(self.h.owner)
        self.h.vault.put(scope, creds.EXPO_TOKEN.name, self.eas.token)
        if apple:
            self.h.vault.put(scope, creds.APPLE_KEY_ID.name, self.asc.key_id)
            self.h.vault.put(scope, creds.APPLE_ISSUER_ID.name, self.asc.issuer_id)
            self.h.vault.put(scope, creds.APPLE_PRIVATE_KEY.name, self.asc.private_key_pem)
        if play:
            self.h.vault.put(scope, creds.PLAY_SERVICE_ACCOUNT.name, self.play.service_account_json())

    def graphql_documents_valid(self) -> int:
        exchanges = self.eas.recorder.matching("POST", "^/graphql$")
        for exchange in exchanges:
            errors = validate(eas_schema(), parse(exchange.request_json["query"]))
            assert not errors, errors
        return len(exchanges)


@pytest.fixture
def stack(tmp_path: Path, shared_temporal: str) -> Iterator[Stack]:
    eas = EasEmulator(apps={"@acme/demo": "3a6d4c2e-0000-4000-8000-000000000001"})
    asc = AppStoreConnectEmulator(bundle_id="com.acme.demo")
    play = GooglePlayEmulator(package="com.acme.demo")
    with serve(eas.app) as eas_url, serve(asc.app) as asc_url, serve(play.app) as play_url:
        play.token_url = f"{play_url}/token"
        eas.on_ios_submission = lambda build: asc.upload_build("com.acme.demo", build["appBuildVersion"])
        with harness(
            tmp_path,
            dict(mobile.PIPELINES),
            shared_temporal,
            expo_api_url=f"{eas_url}/graphql",
            app_store_connect_api_url=asc_url,
            google_play_api_url=play_url,
            google_oauth_token_url=play.token_url,
        ) as h:
            yield Stack(eas, asc, play, h)


def params(platform: str, submit: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "app": "demo",
        "platform": platform,
        "submit": submit,
        "bundle_id": "com.acme.demo",
        "name": "Acme Demo",
        "version": "1.2.0",
        "server_url": "https://demo.acme.dev",
        "eas_project": "@acme/demo",
        "build_number": 1700000001,
        **extra,
    }


def test_android_build_reaches_the_internal_track(stack: Stack, icon: Path) -> None:
    stack.give_credentials(apple=False)
    row = stack.h.run("mobile", params("android", "internal", icon=str(icon)))
    assert row["status"] == "succeeded", row["error"]

    state = row["state"]
    build = stack.eas.builds[state["build"]["id"]]
    assert build["status"] == "FINISHED"
    assert state["build"]["artifact_url"].endswith(".aab")
    assert state["build"]["minutes"] == 8  # 430 s of worker time, billed by the started minute
    # EAS received the generated project itself.
    job = stack.eas.jobs[build["id"]]
    assert job["projectArchive"] == {"type": "GCS", "bucketKey": state["bucket_key"]}
    assert job["version"] == {"versionCode": "1700000001"}
    files = stack.eas.uploaded_files(state["bucket_key"])
    assert "./capacitor.config.json" in files and "./android/app/build.gradle" in files
    assert "./eas.json" in files and not any("node_modules" in f for f in files)

    # Play: one committed edit with our bundle released on the internal track.
    (edit,) = stack.play.committed
    assert edit["tracks"]["internal"]["releases"][0]["versionCodes"] == [str(state["play"]["version_code"])]
    assert edit["tracks"]["internal"]["releases"][0]["status"] == "completed"
    assert not stack.play.edits

    readings = {r["meter"]: r for r in state["cost_readings"]}
    assert readings["build_minutes"]["quantity"] == 8
    assert readings["build"]["dimensions"]["resource_class"] == "ANDROID_MEDIUM"
    assert readings["developer_registration"]["amount_cents"] == 2500

    assert stack.graphql_documents_valid() >= 5
    assert not stack.eas.graphql_errors
    # access check (insert, delete), then insert, upload, track, commit
    assert play_contract.check(stack.play.recorder.exchanges) == 6
    # No secret reached the journal.
    journal = "\n".join(row["log"])
    assert stack.eas.token not in journal and "PRIVATE KEY" not in journal


def test_ios_build_lands_on_testflight(stack: Stack) -> None:
    stack.give_credentials(play=False)
    external = stack.asc.add_group("com.acme.demo", "Friends", internal=False)
    stack.asc.faults.add(429, retry_after=0.1, method="GET", path="^/v1/builds$")
    row = stack.h.run("mobile", params("ios", "testflight", beta_group="Friends"))
    assert row["status"] == "succeeded", row["error"]

    flight = row["state"]["testflight"]
    assert flight["beta_group_id"] == external
    assert stack.asc.group_builds[external] == {flight["asc_build_id"]}
    assert stack.asc.builds[flight["asc_build_id"]]["version"] == "1700000001"
    assert flight["beta_review"] == "WAITING_FOR_REVIEW"
    # EAS Submit got the account's API key to upload with.
    (submission,) = stack.eas.submissions.values()
    assert submission["_config"]["ascApiKey"]["keyIdentifier"] == stack.asc.key_id
    assert submission["_config"]["ascAppIdentifier"] == "1234567890"
    assert {r["meter"] for r in row["state"]["cost_readings"]} == {
        "build",
        "build_minutes",
        "developer_program",
    }

    assert stack.asc.faults.injected == 1  # throttled once, waited Retry-After, went on
    checked, uncovered = check_openapi(ASC_SPEC, stack.asc.recorder.exchanges, skip_status=(429,))
    assert checked >= 5 and uncovered == []
    assert stack.graphql_documents_valid() >= 6


def test_missing_prerequisites_are_all_named_before_anything_starts(stack: Stack) -> None:
    row = stack.h.run("mobile", params("ios", "testflight"))
    assert row["status"] == "failed"
    assert row["steps"]["check-prerequisites"] == "failed"
    for needed in ("Expo access token", "API key id", "issuer id", "AuthKey_<id>.p8"):
        assert needed in row["error"]
    assert "--apple-key-file" in row["error"]
    assert not stack.eas.recorder.exchanges


def test_failed_build_fails_the_run_and_undoes_generation(stack: Stack) -> None:
    stack.give_credentials()
    stack.eas.build_outcome = "ERRORED"
    row = stack.h.run("mobile", params("android", "internal"))
    assert row["status"] == "failed"
    assert "EAS_BUILD_UNKNOWN_GRADLE_ERROR" in row["error"]
    assert row["steps"]["generate-project"] == "undone"
    assert not list((stack.h.settings.workspace / "builds").glob("*"))
    assert not stack.play.recorder.matching("POST", "/bundles$")  # nothing was sent to Play
    assert any("cost reading" in line and "build_minutes" in line for line in row["log"])


def test_invalid_apple_key_is_reported_and_nothing_is_uploaded(stack: Stack) -> None:
    stack.give_credentials(play=False)
    stranger, _ = new_api_key()
    stack.h.vault.put(stack.h.app_id, creds.APPLE_PRIVATE_KEY.name, stranger)  # the app's own wins
    row = stack.h.run("mobile", params("ios", "testflight"))
    assert row["status"] == "failed"
    assert "App Store Connect refused API key" in row["error"] and "(401)" in row["error"]
    assert row["steps"]["verify-store-access"] == "failed"
    assert not stack.eas.builds and not stack.eas.submissions  # no paid build for a bad key
    assert {e.status for e in stack.asc.recorder.exchanges} == {401}


def test_rejected_play_release_discards_the_edit(stack: Stack) -> None:
    stack.give_credentials(apple=False)
    stack.play.reject_commit = True
    row = stack.h.run("mobile", params("android", "internal"))
    assert row["status"] == "failed"
    assert "edit refused at commit" in row["error"] and "draft app" in row["error"]
    assert not stack.play.edits and not stack.play.committed


def test_rejected_testflight_processing_fails_with_apples_verdict(stack: Stack) -> None:
    stack.give_credentials(play=False)
    stack.asc.reject_processing = True
    row = stack.h.run("mobile", params("ios", "testflight"))
    assert row["status"] == "failed"
    assert "rejected by App Store Connect processing (INVALID)" in row["error"]


def test_invalid_play_service_account_is_refused(stack: Stack) -> None:
    stack.give_credentials(apple=False)
    other = GooglePlayEmulator()
    stack.h.vault.put(
        creds.owner_scope("alice"),
        creds.PLAY_SERVICE_ACCOUNT.name,
        stack.play.service_account_json(private_key=other.private_key_pem),
    )
    row = stack.h.run("mobile", params("android", "internal"))
    assert row["status"] == "failed"
    assert "Google refused the service account deployer@acme.iam.gserviceaccount.com (400)" in row["error"]
    assert row["steps"]["verify-store-access"] == "failed"
    assert not stack.play.edits and not stack.eas.builds


def test_build_that_never_ends_times_out_and_is_cancelled(stack: Stack) -> None:
    stack.give_credentials()
    stack.eas.build_outcome = "STUCK"
    stack.h.settings.build_wait_seconds = 0.3
    row = stack.h.run("mobile", params("android", None))
    assert row["status"] == "failed"
    assert "still IN_PROGRESS after 0.3 s" in row["error"]
    assert stack.eas.cancelled == [row["state"].get("build_id") or next(iter(stack.eas.builds))]


def test_throttling_and_outages_are_retried(stack: Stack) -> None:
    stack.give_credentials()
    stack.eas.faults.add(429, retry_after=0.2, method="POST", path="^/graphql$")
    stack.eas.faults.add(503, method="POST", path="^/graphql$", times=2)
    stack.play.faults.add(503, method="POST", path="/bundles$")
    row = stack.h.run("mobile", params("android", "internal"))
    assert row["status"] == "succeeded", row["error"]
    assert stack.eas.faults.injected == 3 and stack.play.faults.injected == 1
    statuses = [e.status for e in stack.eas.recorder.exchanges]
    assert statuses[:4] == [429, 503, 503, 200]
    assert len(stack.play.committed) == 1


def test_cancel_during_the_build_cancels_it_on_eas_and_undoes(stack: Stack) -> None:
    stack.give_credentials()
    stack.eas.build_outcome = "STUCK"
    runner = stack.h.runner
    deployment_id = runner.submit(stack.h.app_id, "mobile", params("android", None), requested_by="test")
    deadline = time.monotonic() + 60
    while not stack.eas.builds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stack.eas.builds, "the build was never requested"
    assert runner.cancel(deployment_id)
    row = runner.wait(deployment_id, timeout=60)
    assert row["status"] == "cancelled"
    assert stack.eas.cancelled == list(stack.eas.builds)
    steps = {
        r["name"]: r["status"]
        for r in stack.h.store.fetchall(
            "SELECT name, status FROM step_runs WHERE deployment_id = ?", [deployment_id]
        )
    }
    log = stack.h.store.fetchall("SELECT * FROM deployment_log WHERE deployment_id = ?", [deployment_id])
    lines = "\n".join(f"{r['step']}: {r['line']}" for r in log)
    assert steps["generate-project"] == "undone", f"{steps}\n{lines}"


def test_submission_refused_by_eas_submit_fails_with_apples_code(stack: Stack) -> None:
    stack.give_credentials(play=False)
    stack.eas.submission_outcome = "ERRORED"
    row = stack.h.run("mobile", params("ios", "testflight"))
    assert row["status"] == "failed"
    assert "ITMS-90165" in row["error"] and row["steps"]["submit-testflight"] == "failed"
    assert not stack.asc.builds  # nothing reached App Store Connect
