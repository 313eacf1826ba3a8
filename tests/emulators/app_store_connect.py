"""App Store Connect emulator, built from ``shared/specs/app-store-connect`` (OpenAPI 3.7.0 subset).

It checks each request's ES256 JWT against the account's public key as Apple does (kid, iss, aud
``appstoreconnect-v1``, a lifetime of at most 20 minutes) and answers 401 otherwise. Builds appear
when EAS Submit "uploads" them (``upload_build``) and are PROCESSING for a few polls, then VALID, or
INVALID when ``reject_processing`` is set; ``reject_beta_review`` refuses beta review with 422.
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import Faults, Instrumented, Recorder


def new_api_key() -> tuple[str, ec.EllipticCurvePrivateKey]:
    """A .p8 (PKCS#8 PEM) P-256 key as App Store Connect hands out, and the key object."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key


def _error(status: int, code: str, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "id": str(uuid.uuid4()),
                    "status": str(status),
                    "code": code,
                    "title": title,
                    "detail": detail,
                }
            ]
        },
        status_code=status,
    )


class AppStoreConnectEmulator:
    def __init__(
        self,
        *,
        key_id: str = "ABC123DEFG",
        issuer_id: str | None = None,
        bundle_id: str = "com.acme.demo",
        processing_polls: int = 2,
    ) -> None:
        self.key_id, self.issuer_id = key_id, issuer_id or str(uuid.uuid4())
        self.private_key_pem, key = new_api_key()
        self.public_key = key.public_key()
        self.apps = {bundle_id: {"id": "1234567890", "name": "Demo"}}
        self.builds: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.group_builds: dict[str, set[str]] = {}
        self.review_submissions: dict[str, dict[str, Any]] = {}
        self.processing_polls = processing_polls
        self.reject_processing = False
        self.reject_beta_review = False
        self.faults = Faults()
        self.recorder = Recorder()
        self.app = Instrumented(
            Starlette(
                routes=[
                    Route("/v1/apps", self._apps, methods=["GET"]),
                    Route("/v1/builds", self._builds, methods=["GET"]),
                    Route("/v1/betaGroups", self._beta_groups, methods=["GET", "POST"]),
                    Route(
                        "/v1/betaGroups/{id}/relationships/builds",
                        self._group_builds,
                        methods=["POST", "DELETE"],
                    ),
                    Route("/v1/betaAppReviewSubmissions", self._review, methods=["GET", "POST"]),
                ]
            ),
            self.faults,
            self.recorder,
        )

    def add_group(self, app_bundle: str, name: str, *, internal: bool = True) -> str:
        group_id = str(uuid.uuid4())
        self.groups[group_id] = {"app": self.apps[app_bundle]["id"], "name": name, "internal": internal}
        return group_id

    def upload_build(self, bundle_id: str, build_number: str) -> str:
        """What EAS Submit's upload does: a new build in PROCESSING."""
        build_id = str(uuid.uuid4())
        self.builds[build_id] = {
            "app": self.apps[bundle_id]["id"],
            "version": build_number,
            "state": "PROCESSING",
            "polls": 0,
        }
        return build_id

    # -- auth -----------------------------------------------------------------------------------------

    def _refused(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        detail = (
            "Provide a properly configured and signed bearer token, and make sure that it has not expired."
        )
        if not header.startswith("Bearer "):
            return _error(401, "NOT_AUTHORIZED", "Authentication credentials are missing or invalid.", detail)
        try:
            token = header.removeprefix("Bearer ")
            if jwt.get_unverified_header(token).get("kid") != self.key_id:
                raise jwt.InvalidTokenError("unknown kid")
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                audience="appstoreconnect-v1",
                issuer=self.issuer_id,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
            if claims["exp"] - claims["iat"] > 20 * 60:
                raise jwt.InvalidTokenError("lifetime over 20 minutes")
        except jwt.PyJWTError:
            return _error(401, "NOT_AUTHORIZED", "Authentication credentials are missing or invalid.", detail)
        return None

    @staticmethod
    def _links(request: Request) -> dict[str, str]:
        return {"self": str(request.url)}

    # -- resources ------------------------------------------------------------------------------------

    async def _apps(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        wanted = request.query_params.get("filter[bundleId]")
        data = [
            {"type": "apps", "id": app["id"], "attributes": {"name": app["name"], "bundleId": bundle}}
            for bundle, app in self.apps.items()
            if wanted in (None, bundle)
        ]
        return JSONResponse({"data": data, "links": self._links(request)})

    async def _builds(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        app, version = request.query_params.get("filter[app]"), request.query_params.get("filter[version]")
        data = []
        for build_id, build in self.builds.items():
            if app not in (None, build["app"]) or version not in (None, build["version"]):
                continue
            build["polls"] += 1
            if build["state"] == "PROCESSING" and build["polls"] > self.processing_polls:
                build["state"] = "INVALID" if self.reject_processing else "VALID"
            data.append(
                {
                    "type": "builds",
                    "id": build_id,
                    "attributes": {"version": build["version"], "processingState": build["state"]},
                }
            )
        return JSONResponse({"data": data, "links": self._links(request)})

    def _group_json(self, request: Request, group_id: str) -> dict[str, Any]:
        group = self.groups[group_id]
        return {
            "type": "betaGroups",
            "id": group_id,
            "attributes": {"name": group["name"], "isInternalGroup": group["internal"]},
        }

    async def _beta_groups(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        if request.method == "POST":
            body = await request.json()
            data = body["data"]
            group_id = str(uuid.uuid4())
            self.groups[group_id] = {
                "app": data["relationships"]["app"]["data"]["id"],
                "name": data["attributes"]["name"],
                "internal": bool(data["attributes"].get("isInternalGroup")),
            }
            return JSONResponse(
                {"data": self._group_json(request, group_id), "links": self._links(request)}, status_code=201
            )
        app, name = request.query_params.get("filter[app]"), request.query_params.get("filter[name]")
        data = [
            self._group_json(request, gid)
            for gid, g in self.groups.items()
            if app in (None, g["app"]) and name in (None, g["name"])
        ]
        return JSONResponse({"data": data, "links": self._links(request)})

    async def _group_builds(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        group_id = request.path_params["id"]
        if group_id not in self.groups:
            return _error(
                404, "NOT_FOUND", "The specified resource does not exist", f"no beta group {group_id}"
            )
        ids = {item["id"] for item in (await request.json())["data"]}
        unknown = ids - set(self.builds)
        if unknown:
            return _error(
                404, "NOT_FOUND", "The specified resource does not exist", f"no build {unknown.pop()}"
            )
        members = self.group_builds.setdefault(group_id, set())
        members.update(ids) if request.method == "POST" else members.difference_update(ids)
        return Response(status_code=204)

    async def _review(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        if request.method == "GET":
            build = request.query_params.get("filter[build]")
            data = [s for s in self.review_submissions.values() if build in (None, s["_build"])]
            return JSONResponse(
                {
                    "data": [{k: v for k, v in s.items() if k != "_build"} for s in data],
                    "links": self._links(request),
                }
            )
        build_id = (await request.json())["data"]["relationships"]["build"]["data"]["id"]
        if self.reject_beta_review:
            return _error(
                422,
                "ENTITY_UNPROCESSABLE",
                "The request entity is not valid.",
                "Beta App Review information is missing: add a contact email and a demo account.",
            )
        if any(s["_build"] == build_id for s in self.review_submissions.values()):
            return _error(409, "ENTITY_ERROR", "The request entity already exists.", "already submitted")
        submission_id = str(uuid.uuid4())
        self.review_submissions[submission_id] = {
            "type": "betaAppReviewSubmissions",
            "id": submission_id,
            "attributes": {"betaReviewState": "WAITING_FOR_REVIEW"},
            "_build": build_id,
        }
        view = {k: v for k, v in self.review_submissions[submission_id].items() if k != "_build"}
        return JSONResponse({"data": view, "links": self._links(request)}, status_code=201)
