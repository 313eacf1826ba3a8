"""Google Play Developer API emulator, built from ``shared/specs/google-play/androidpublisher-v3.json``.

Paths and methods are those of the discovery document; the OAuth token endpoint checks the
service-account JWT assertion (RS256, ``aud`` the token URL, the androidpublisher scope) against the
account's public key. ``reject_commit`` makes the commit fail as Play does for a rejected release.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import Faults, Instrumented, Recorder

SCOPE = "https://www.googleapis.com/auth/androidpublisher"
BASE = "/androidpublisher/v3/applications/{package}/edits"


def _error(status: int, message: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message, "status": reason}}, status_code=status)


class GooglePlayEmulator:
    def __init__(
        self, *, package: str = "com.acme.demo", client_email: str = "deployer@acme.iam.gserviceaccount.com"
    ) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = key.public_key()
        self.private_key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.client_email = client_email
        self.packages = {package}
        self.token_url = ""  # set by the test to the served URL of /token
        self.access_tokens: set[str] = set()
        self.edits: dict[str, dict[str, Any]] = {}
        self.committed: list[dict[str, Any]] = []
        self.next_version_code = 1
        self.reject_commit = False
        self.faults = Faults()
        self.recorder = Recorder()
        self.app = Instrumented(
            Starlette(
                routes=[
                    Route("/token", self._token, methods=["POST"]),
                    Route(BASE, self._insert, methods=["POST"]),
                    Route(BASE + "/{edit}", self._delete, methods=["DELETE"]),
                    Route(BASE + "/{edit}:commit", self._commit, methods=["POST"]),
                    Route("/upload" + BASE + "/{edit}/bundles", self._upload, methods=["POST"]),
                    Route(BASE + "/{edit}/tracks/{track}", self._track, methods=["PUT"]),
                ]
            ),
            self.faults,
            self.recorder,
        )

    def service_account_json(self, private_key: str | None = None) -> str:
        return json.dumps(
            {
                "type": "service_account",
                "project_id": "acme",
                "private_key_id": "k1",
                "private_key": private_key or self.private_key_pem,
                "client_email": self.client_email,
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion")),
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_url,
                issuer=self.client_email,
            )
            if SCOPE not in str(claims.get("scope", "")).split():
                raise jwt.InvalidTokenError("scope")
        except jwt.PyJWTError:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status_code=400
            )
        token = "ya29." + secrets.token_urlsafe(32)
        self.access_tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _refused(self, request: Request) -> Response | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.access_tokens:
            return _error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        if request.path_params["package"] not in self.packages:
            return _error(404, f"Package not found: {request.path_params['package']}.", "NOT_FOUND")
        return None

    def _edit(self, request: Request) -> dict[str, Any] | None:
        return self.edits.get(request.path_params["edit"])

    async def _insert(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        edit_id = str(uuid.uuid4().int)[:20]
        self.edits[edit_id] = {"package": request.path_params["package"], "bundles": [], "tracks": {}}
        return JSONResponse({"id": edit_id, "expiryTimeSeconds": "1900000000"})

    async def _delete(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        if self.edits.pop(request.path_params["edit"], None) is None:
            return _error(404, "Edit not found.", "NOT_FOUND")
        return Response(status_code=204)

    async def _upload(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        edit = self._edit(request)
        if edit is None:
            return _error(404, "Edit not found.", "NOT_FOUND")
        if request.query_params.get("uploadType") != "media":
            return _error(400, "Media upload requires uploadType=media.", "INVALID_ARGUMENT")
        body = await request.body()
        if not body.startswith(b"PK"):
            return _error(400, "The Android App Bundle was not a valid zip file.", "INVALID_ARGUMENT")
        bundle = {
            "versionCode": self.next_version_code,
            "sha1": hashlib.sha1(body).hexdigest(),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        self.next_version_code += 1
        edit["bundles"].append(bundle)
        return JSONResponse(bundle)

    async def _track(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        edit = self._edit(request)
        if edit is None:
            return _error(404, "Edit not found.", "NOT_FOUND")
        track = await request.json()
        known = {str(bundle["versionCode"]) for bundle in edit["bundles"]}
        for release in track.get("releases", []):
            missing = set(release.get("versionCodes", [])) - known
            if missing:
                return _error(400, f"Version code {missing.pop()} has not been uploaded.", "INVALID_ARGUMENT")
        edit["tracks"][request.path_params["track"]] = track
        return JSONResponse(track)

    async def _commit(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        edit = self.edits.get(request.path_params["edit"])
        if edit is None:
            return _error(404, "Edit not found.", "NOT_FOUND")
        if self.reject_commit:
            return _error(
                400, "Only releases with status draft may be created on draft app.", "FAILED_PRECONDITION"
            )
        self.committed.append(self.edits.pop(request.path_params["edit"]))
        return JSONResponse({"id": request.path_params["edit"], "expiryTimeSeconds": "1900000000"})
