"""EAS (Expo Application Services): builds and submissions through the GraphQL API.

The same calls ``eas build`` and ``eas submit`` make (expo/eas-cli): the project is packed and put on
an upload session's signed URL, a build is created from that bucket key and polled to its end; an iOS
build is then submitted to App Store Connect with the account's API key. Queries are checked against
EAS's introspection schema (``shared/specs/expo/graphql.schema.json``) in the contract tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from engine.errors import ProviderError, ProviderUnavailable, StepTimeout, TerminalError
from engine.providers.http import ProviderClient, RequestRetry

PROVIDER = "eas"
BUILD_FIELDS = """
  id status platform buildProfile appVersion appBuildVersion resourceClass
  createdAt workerStartedAt completedAt
  artifacts { applicationArchiveUrl buildUrl }
  error { errorCode message }
  metrics { buildDuration buildQueueTime }
"""
APP_BY_FULL_NAME = """
query AppByFullName($fullName: String!) {
  app { byFullName(fullName: $fullName) { id fullName } }
}
"""
CREATE_UPLOAD_SESSION = """
mutation CreateUploadSession($type: UploadSessionType!, $filename: String) {
  uploadSession { createUploadSession(type: $type, filename: $filename) }
}
"""
CREATE_ANDROID_BUILD = f"""
mutation CreateAndroidBuild($appId: ID!, $job: AndroidJobInput!, $metadata: BuildMetadataInput) {{
  build {{ createAndroidBuild(appId: $appId, job: $job, metadata: $metadata) {{ build {{ {BUILD_FIELDS} }} }} }}
}}
"""
CREATE_IOS_BUILD = f"""
mutation CreateIosBuild($appId: ID!, $job: IosJobInput!, $metadata: BuildMetadataInput) {{
  build {{ createIosBuild(appId: $appId, job: $job, metadata: $metadata) {{ build {{ {BUILD_FIELDS} }} }} }}
}}
"""
BUILD_BY_ID = f"""
query BuildById($buildId: ID!) {{
  builds {{ byId(buildId: $buildId) {{ {BUILD_FIELDS} }} }}
}}
"""
CANCEL_BUILD = """
mutation CancelBuild($buildId: ID!) {
  build { cancelBuild(buildId: $buildId) { id status } }
}
"""
CREATE_IOS_SUBMISSION = """
mutation CreateIosSubmission($input: CreateIosSubmissionInput!) {
  submission { createIosSubmission(input: $input) { submission { id status error { errorCode message } } } }
}
"""
SUBMISSION_BY_ID = """
query SubmissionById($submissionId: ID!) {
  submissions { byId(submissionId: $submissionId) { id status error { errorCode message } } }
}
"""
DOCUMENTS = (
    APP_BY_FULL_NAME,
    CREATE_UPLOAD_SESSION,
    CREATE_ANDROID_BUILD,
    CREATE_IOS_BUILD,
    BUILD_BY_ID,
    CANCEL_BUILD,
    CREATE_IOS_SUBMISSION,
    SUBMISSION_BY_ID,
)
FINISHED, FAILED = "FINISHED", ("ERRORED", "CANCELED")
SUBMISSION_FAILED = ("ERRORED", "CANCELED")


class BuildFailed(TerminalError):
    """EAS ran the build and it failed; the message carries EAS's error code and words."""


@dataclass(frozen=True)
class AscApiKey:
    key_id: str
    issuer_id: str
    private_key: str  # the .p8 PEM text

    def __repr__(self) -> str:
        return f"AscApiKey(key_id={self.key_id!r}, issuer_id={self.issuer_id!r})"


def build_minutes(build: dict[str, Any]) -> int:
    """Billed build time in whole minutes, rounded up: worker start to completion."""
    started, completed = build.get("workerStartedAt"), build.get("completedAt")
    if not started or not completed:
        return 0
    seconds = (datetime.fromisoformat(completed) - datetime.fromisoformat(started)).total_seconds()
    return max(1, math.ceil(seconds / 60))


class EasClient:
    def __init__(
        self,
        token: str,
        *,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        retry: RequestRetry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = ProviderClient(
            PROVIDER,
            base_url,
            headers={"Authorization": f"Bearer {token}"},
            secrets=[token],
            transport=transport,
            retry=retry,
            sleep=sleep,
        )
        self._sleep, self._clock = sleep, clock
        self._transport = transport
        self._endpoint = base_url  # the GraphQL endpoint itself; httpx would add a trailing slash to ""

    def close(self) -> None:
        self.http.close()

    def graphql(self, document: str, variables: dict[str, Any], *, idempotent: bool = False) -> Any:
        try:
            body = self.http.json(
                "POST",
                self._endpoint,
                json={"query": document, "variables": variables},
                idempotent=idempotent,
            )
        except ProviderError as exc:
            if exc.status in (401, 403):
                raise ProviderError(
                    PROVIDER,
                    "the Expo access token was refused: create a robot token at expo.dev and store "
                    "it with `launchdeck mobile APP --expo-token ...`",
                    status=exc.status,
                ) from exc
            raise
        errors = (body or {}).get("errors")
        if errors:
            first = errors[0]
            code = (first.get("extensions") or {}).get("errorCode") or (first.get("extensions") or {}).get(
                "code"
            )
            message = self.http.clean(f"{code or 'GRAPHQL_ERROR'}: {first.get('message')}")
            if code in ("UNAUTHENTICATED", "UNAUTHORIZED_ERROR"):
                raise ProviderError(PROVIDER, f"the Expo access token was refused ({message})", status=401)
            if code in ("TOO_MANY_REQUESTS", "INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"):
                raise ProviderUnavailable(PROVIDER, message)
            raise ProviderError(PROVIDER, message)
        return body["data"]

    # -- project ----------------------------------------------------------------------------------

    def app_id(self, full_name: str) -> str:
        data = self.graphql(APP_BY_FULL_NAME, {"fullName": full_name}, idempotent=True)
        return str(data["app"]["byFullName"]["id"])

    def upload_project(self, archive: Path) -> str:
        """Put a project tarball on a fresh upload session; returns its bucket key."""
        data = self.graphql(
            CREATE_UPLOAD_SESSION, {"type": "EAS_BUILD_GCS_PROJECT_SOURCES", "filename": archive.name}
        )
        session = data["uploadSession"]["createUploadSession"]
        headers = dict(session.get("headers") or {})
        # A signed URL carries its own authorisation; our bearer token must not travel to storage.
        with httpx.Client(transport=self._transport, timeout=120.0) as storage:
            response = storage.put(session["url"], content=archive.read_bytes(), headers=headers)
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(
                PROVIDER, f"project upload answered {response.status_code}", status=response.status_code
            )
        if response.status_code >= 300:
            raise ProviderError(
                PROVIDER, f"project upload refused ({response.status_code})", status=response.status_code
            )
        return str(session["bucketKey"])

    # -- builds -----------------------------------------------------------------------------------

    def create_build(
        self,
        platform: str,
        app_id: str,
        bucket_key: str,
        *,
        profile: str,
        version: str,
        build_number: int,
        android_archive_path: str = "",
        ios_scheme: str = "App",
    ) -> dict[str, Any]:
        job: dict[str, Any] = {
            "type": "GENERIC",
            "projectArchive": {"type": "GCS", "bucketKey": bucket_key},
            "projectRootDirectory": ".",
            "buildProfile": profile,
            "mode": "BUILD",
            "triggeredBy": "EAS_CLI",
        }
        metadata = {
            "appVersion": version,
            "appBuildVersion": str(build_number),
            "buildProfile": profile,
            "distribution": "STORE",
            "workflow": "GENERIC",
        }
        if platform == "android":
            job.update(
                buildType="APP_BUNDLE",
                gradleCommand=":app:bundleRelease",
                applicationArchivePath=android_archive_path,
                version={"versionCode": str(build_number)},
            )
            data = self.graphql(CREATE_ANDROID_BUILD, {"appId": app_id, "job": job, "metadata": metadata})
            return dict(data["build"]["createAndroidBuild"]["build"])
        job.update(
            scheme=ios_scheme,
            buildConfiguration="Release",
            distribution="STORE",
            version={"buildNumber": str(build_number)},
        )
        data = self.graphql(CREATE_IOS_BUILD, {"appId": app_id, "job": job, "metadata": metadata})
        return dict(data["build"]["createIosBuild"]["build"])

    def build(self, build_id: str) -> dict[str, Any]:
        return dict(self.graphql(BUILD_BY_ID, {"buildId": build_id}, idempotent=True)["builds"]["byId"])

    def cancel_build(self, build_id: str) -> None:
        self.graphql(CANCEL_BUILD, {"buildId": build_id}, idempotent=True)

    def wait_for_build(
        self,
        build_id: str,
        *,
        poll: float,
        timeout: float,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the build ends; a failed build raises BuildFailed, a slow one StepTimeout."""
        deadline = self._clock() + timeout
        while True:
            build = self.build(build_id)
            if on_status:
                on_status(build)
            if build["status"] == FINISHED:
                return build
            if build["status"] in FAILED:
                error = build.get("error") or {}
                raise BuildFailed(
                    f"EAS build {build_id} {build['status'].lower()}: "
                    f"{error.get('errorCode', 'UNKNOWN')}: {error.get('message', 'no message')}"
                )
            if self._clock() >= deadline:
                raise StepTimeout(f"EAS build {build_id} still {build['status']} after {timeout:g} s")
            self._sleep(poll)

    # -- submissions ------------------------------------------------------------------------------

    def submit_ios(self, app_id: str, build_id: str, *, asc_app_id: str, key: AscApiKey) -> dict[str, Any]:
        """Upload the build's IPA to App Store Connect (TestFlight) with the account's API key."""
        self.http.add_secret(key.private_key)
        config = {
            "ascAppIdentifier": asc_app_id,
            "ascApiKey": {
                "keyP8": key.private_key,
                "keyIdentifier": key.key_id,
                "issuerIdentifier": key.issuer_id,
            },
        }
        data = self.graphql(
            CREATE_IOS_SUBMISSION,
            {"input": {"appId": app_id, "submittedBuildId": build_id, "config": config}},
        )
        return dict(data["submission"]["createIosSubmission"]["submission"])

    def wait_for_submission(self, submission_id: str, *, poll: float, timeout: float) -> dict[str, Any]:
        deadline = self._clock() + timeout
        while True:
            data = self.graphql(SUBMISSION_BY_ID, {"submissionId": submission_id}, idempotent=True)
            submission = dict(data["submissions"]["byId"])
            if submission["status"] == "FINISHED":
                return submission
            if submission["status"] in SUBMISSION_FAILED:
                error = submission.get("error") or {}
                raise ProviderError(
                    PROVIDER,
                    f"submission {submission_id} {submission['status'].lower()}: "
                    f"{error.get('errorCode', 'UNKNOWN')}: {error.get('message', 'no message')}",
                )
            if self._clock() >= deadline:
                raise StepTimeout(
                    f"EAS submission {submission_id} still {submission['status']} after {timeout:g} s"
                )
            self._sleep(poll)
