"""EAS emulator: a GraphQL server over EAS's own introspection schema (``shared/specs/expo``).

Every request is parsed, validated and executed by graphql-core against the schema built from
``graphql.schema.json``, so a query naming a field or argument EAS does not have, or a variable of the
wrong type (an unknown enum value, a missing required input field), fails here as it would there.
Builds move NEW -> IN_QUEUE -> IN_PROGRESS -> FINISHED over polls, or end ERRORED, or never end.
An iOS submission calls ``on_ios_submission`` so a test can hand the build to the App Store Connect
emulator, as EAS Submit uploads it there.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from graphql import GraphQLError, GraphQLSchema, build_client_schema, graphql_sync
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import Faults, Instrumented, Recorder

SCHEMA_FILE = Path("/work/shared/specs/expo/graphql.schema.json")


@cache
def eas_schema() -> GraphQLSchema:
    # assume_valid: EAS's published schema breaks one rule graphql-core checks on the schema itself (an
    # implementation field deprecated where its interface's is not); documents are still validated.
    return build_client_schema(json.loads(SCHEMA_FILE.read_text()), assume_valid=True)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


class EasEmulator:
    def __init__(
        self,
        *,
        token: str = "expo-robot-token-0123456789",
        apps: dict[str, str] | None = None,
        polls_to_finish: int = 2,
        build_outcome: str = "FINISHED",  # or ERRORED, or STUCK (never ends)
        submission_outcome: str = "FINISHED",
        build_seconds: int = 430,
    ) -> None:
        self.token = token
        self.apps = apps if apps is not None else {"@acme/demo": str(uuid.uuid4())}
        self.polls_to_finish, self.build_outcome = polls_to_finish, build_outcome
        self.submission_outcome, self.build_seconds = submission_outcome, build_seconds
        self.uploads: dict[str, bytes] = {}
        self.builds: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.submissions: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []
        self.graphql_errors: list[str] = []
        self.on_ios_submission: Callable[[dict[str, Any]], object] | None = None
        self.faults = Faults()
        self.recorder = Recorder()
        self._lock = threading.Lock()
        self.app = Instrumented(
            Starlette(
                routes=[
                    Route("/graphql", self._graphql, methods=["POST"]),
                    Route("/uploads/{key}", self._upload, methods=["PUT"]),
                    Route("/artifacts/{name}", self._artifact, methods=["GET"]),
                ]
            ),
            self.faults,
            self.recorder,
        )

    def uploaded_files(self, bucket_key: str) -> list[str]:
        with tarfile.open(fileobj=io.BytesIO(self.uploads[bucket_key]), mode="r:gz") as archive:
            return archive.getnames()

    # -- HTTP ---------------------------------------------------------------------------------------

    async def _graphql(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse(
                {"errors": [{"message": "Unauthorized", "extensions": {"errorCode": "UNAUTHORIZED_ERROR"}}]},
                status_code=401,
            )
        body = await request.json()
        base = str(request.base_url).rstrip("/")
        result = graphql_sync(
            eas_schema(), body["query"], root_value=self._root(base), variable_values=body.get("variables")
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
            self.graphql_errors.extend(error.message for error in result.errors)
            if result.data is None:  # invalid document or variables: Apollo answers 400
                return JSONResponse(payload, status_code=400)
        return JSONResponse(payload)

    async def _upload(self, request: Request) -> Response:
        key = request.path_params["key"]
        if key not in self.uploads or request.query_params.get("signature") != "ok":
            return Response("signature does not match", status_code=403)
        self.uploads[key] = await request.body()
        return Response(status_code=200)

    async def _artifact(self, request: Request) -> Response:
        build_id = request.path_params["name"].rsplit(".", 1)[0]
        if build_id not in self.builds:
            return Response(status_code=404)
        return Response(
            b"PK\x03\x04" + f"binary of build {build_id}".encode(), media_type="application/octet-stream"
        )

    # -- resolvers ------------------------------------------------------------------------------------

    def _root(self, base: str) -> dict[str, Any]:
        return {
            "app": {"byFullName": lambda _info, fullName: self._app(fullName)},
            "uploadSession": {
                "createUploadSession": lambda _info, type, filename=None: self._upload_session(base, type)
            },
            "build": lambda _info, buildId=None: {
                "createAndroidBuild": lambda _i, appId, job, metadata=None, buildParams=None: {
                    "build": self._create_build(base, "ANDROID", appId, job, metadata)
                },
                "createIosBuild": lambda _i, appId, job, metadata=None, buildParams=None: {
                    "build": self._create_build(base, "IOS", appId, job, metadata)
                },
                "cancelBuild": lambda _i, buildId: self._cancel(buildId),
            },
            "builds": {"byId": lambda _info, buildId: self._poll_build(buildId)},
            "submission": {"createIosSubmission": lambda _info, input: {"submission": self._submit(input)}},
            "submissions": {"byId": lambda _info, submissionId: self._poll_submission(submissionId)},
        }

    def _app(self, full_name: str) -> dict[str, Any]:
        if full_name not in self.apps:
            raise GraphQLError(
                f"Experience with name '{full_name}' does not exist.",
                extensions={"errorCode": "EXPERIENCE_NOT_FOUND"},
            )
        _owner, slug = full_name.lstrip("@").split("/", 1)
        return {"id": self.apps[full_name], "fullName": full_name, "name": slug, "slug": slug}

    def _upload_session(self, base: str, kind: str) -> dict[str, Any]:
        if kind != "EAS_BUILD_GCS_PROJECT_SOURCES":
            raise GraphQLError(f"unexpected upload session type {kind}")
        key = f"project-{uuid.uuid4()}.tar.gz"
        self.uploads[key] = b""
        return {
            "url": f"{base}/uploads/{key}?signature=ok",
            "bucketKey": key,
            "headers": {"content-type": "application/gzip"},
        }

    def _create_build(
        self, base: str, platform: str, app_id: str, job: dict[str, Any], metadata: dict[str, Any] | None
    ) -> dict[str, Any]:
        if app_id not in self.apps.values():
            raise GraphQLError("App not found", extensions={"errorCode": "APP_NOT_FOUND"})
        bucket = job["projectArchive"].get("bucketKey")
        if not self.uploads.get(bucket or ""):
            raise GraphQLError("project archive was not uploaded", extensions={"errorCode": "BAD_USER_INPUT"})
        now = datetime.now(UTC)
        build_id = str(uuid.uuid4())
        extension = "aab" if platform == "ANDROID" else "ipa"
        build = {
            "id": build_id,
            "status": "NEW",
            "platform": platform,
            "buildProfile": job.get("buildProfile"),
            "appVersion": (metadata or {}).get("appVersion"),
            "appBuildVersion": (metadata or {}).get("appBuildVersion"),
            "resourceClass": "ANDROID_MEDIUM" if platform == "ANDROID" else "IOS_M_MEDIUM",
            "createdAt": _iso(now),
            "workerStartedAt": None,
            "completedAt": None,
            "artifacts": None,
            "error": None,
            "metrics": None,
            "_polls": 0,
            "_archive_url": f"{base}/artifacts/{build_id}.{extension}",
        }
        with self._lock:
            self.builds[build_id] = build
            self.jobs[build_id] = job
        return self._view(build)

    def _poll_build(self, build_id: str) -> dict[str, Any]:
        build = self.builds.get(build_id)
        if build is None:
            raise GraphQLError("Build not found", extensions={"errorCode": "BUILD_NOT_FOUND"})
        with self._lock:
            if build["status"] in ("FINISHED", "ERRORED", "CANCELED"):
                return self._view(build)
            build["_polls"] += 1
            started = datetime.fromisoformat(build["createdAt"]) + timedelta(seconds=20)
            if build["_polls"] == 1 or (self.build_outcome == "STUCK" and build["_polls"] < 2):
                build["status"] = "IN_QUEUE"
            elif build["_polls"] < self.polls_to_finish or self.build_outcome == "STUCK":
                build.update(status="IN_PROGRESS", workerStartedAt=_iso(started))
            else:
                completed = started + timedelta(seconds=self.build_seconds)
                build.update(
                    workerStartedAt=_iso(started),
                    completedAt=_iso(completed),
                    metrics={"buildDuration": self.build_seconds, "buildQueueTime": 20},
                )
                if self.build_outcome == "ERRORED":
                    build.update(
                        status="ERRORED",
                        error={
                            "errorCode": "EAS_BUILD_UNKNOWN_GRADLE_ERROR",
                            "message": 'Gradle build failed with unknown error. See logs for the "Run gradlew" phase.',
                        },
                    )
                else:
                    build.update(
                        status="FINISHED",
                        artifacts={
                            "applicationArchiveUrl": build["_archive_url"],
                            "buildUrl": build["_archive_url"],
                        },
                    )
        return self._view(build)

    def _cancel(self, build_id: str) -> dict[str, Any]:
        build = self.builds[build_id]
        build["status"] = "CANCELED"
        self.cancelled.append(build_id)
        return self._view(build)

    @staticmethod
    def _view(build: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in build.items() if not k.startswith("_")}

    def _submit(self, payload: dict[str, Any]) -> dict[str, Any]:
        build = self.builds.get(payload.get("submittedBuildId") or "")
        if build is None or build["status"] != "FINISHED":
            raise GraphQLError("build is not finished", extensions={"errorCode": "BAD_USER_INPUT"})
        submission_id = str(uuid.uuid4())
        submission = {
            "id": submission_id,
            "status": "IN_QUEUE",
            "error": None,
            "_polls": 0,
            "_build": build,
            "_config": payload["config"],
        }
        self.submissions[submission_id] = submission
        return {k: v for k, v in submission.items() if not k.startswith("_")}

    def _poll_submission(self, submission_id: str) -> dict[str, Any]:
        submission = self.submissions[submission_id]
        submission["_polls"] += 1
        if submission["status"] in ("IN_QUEUE", "IN_PROGRESS"):
            if submission["_polls"] < 2:
                submission["status"] = "IN_PROGRESS"
            elif self.submission_outcome == "ERRORED":
                submission.update(
                    status="ERRORED",
                    error={
                        "errorCode": "SUBMISSION_SERVICE_IOS_INVALID_PROVISIONING_PROFILE_SIGNATURE",
                        "message": "Invalid Provisioning Profile Signature (ITMS-90165)",
                    },
                )
            else:
                submission["status"] = "FINISHED"
                if self.on_ios_submission is not None:
                    self.on_ios_submission({**submission["_build"], "config": submission["_config"]})
        return {k: v for k, v in submission.items() if not k.startswith("_")}
