"""App Store Connect API: find the app and its uploaded build, put it on a TestFlight beta group.

Authentication is a short-lived ES256 JWT signed with the account's API key (.p8), as Apple documents
("Generating Tokens for API Requests"): header ``kid``, claims ``iss`` (issuer id), ``iat``, ``exp``
(at most 20 minutes later) and ``aud`` ``appstoreconnect-v1``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from engine.errors import InputError, ProviderConflict, ProviderError, StepTimeout
from engine.providers.eas import AscApiKey
from engine.providers.http import ProviderClient, RequestRetry

PROVIDER = "app_store_connect"
AUDIENCE = "appstoreconnect-v1"
TOKEN_LIFETIME = 20 * 60
JSON_API = "application/json"


class BuildRejected(ProviderError):
    """Apple processed the build and found it invalid, or refused it for beta review."""


def signing_token(key: AscApiKey, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    try:
        return jwt.encode(
            {"iss": key.issuer_id, "iat": issued, "exp": issued + TOKEN_LIFETIME, "aud": AUDIENCE},
            key.private_key,
            algorithm="ES256",
            headers={"kid": key.key_id, "typ": "JWT"},
        )
    except (ValueError, TypeError) as exc:  # not a PEM EC key
        raise InputError(
            f"the App Store Connect key {key.key_id} is not a valid .p8 private key: download it again "
            "from App Store Connect > Users and Access > Integrations"
        ) from exc


class AppStoreConnectClient:
    def __init__(
        self,
        key: AscApiKey,
        *,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        retry: RequestRetry | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.http = ProviderClient(
            PROVIDER, base_url, secrets=[key.private_key], transport=transport, retry=retry, sleep=sleep
        )
        self._sleep, self._clock = sleep, clock
        self._token: tuple[str, float] | None = None

    def close(self) -> None:
        self.http.close()

    def _auth(self) -> dict[str, str]:
        now = time.time()
        if self._token is None or self._token[1] - now < 60:
            token = signing_token(self.key, now)
            self.http.add_secret(token)
            self._token = (token, now + TOKEN_LIFETIME)
        return {"Authorization": f"Bearer {self._token[0]}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self.http.json(method, path, headers=self._auth(), **kwargs)
        except ProviderError as exc:
            if exc.status == 401:
                raise ProviderError(
                    PROVIDER,
                    f"App Store Connect refused API key {self.key.key_id} (401): check the key id, the "
                    "issuer id and the .p8 file, and that the key is not revoked",
                    status=401,
                ) from exc
            raise

    def find_app(self, bundle_id: str) -> str:
        body = self._call("GET", "/v1/apps", params={"filter[bundleId]": bundle_id, "limit": 1})
        if not body["data"]:
            raise ProviderError(
                PROVIDER,
                f"no app with bundle id {bundle_id} in App Store Connect: create it under Apps > New App",
                status=404,
            )
        return str(body["data"][0]["id"])

    def find_build(self, app_id: str, build_number: str) -> dict[str, Any] | None:
        body = self._call(
            "GET",
            "/v1/builds",
            params={
                "filter[app]": app_id,
                "filter[version]": build_number,
                "fields[builds]": "version,processingState,uploadedDate",
                "limit": 1,
            },
        )
        return dict(body["data"][0]) if body["data"] else None

    def wait_for_build(
        self, app_id: str, build_number: str, *, poll: float, timeout: float
    ) -> dict[str, Any]:
        """Until the uploaded build is processed (VALID); INVALID or FAILED raises BuildRejected."""
        deadline = self._clock() + timeout
        while True:
            build = self.find_build(app_id, build_number)
            state = build["attributes"].get("processingState") if build else None
            if build is not None and state == "VALID":
                return build
            if build is not None and state in ("INVALID", "FAILED"):
                raise BuildRejected(
                    PROVIDER, f"build {build_number} was rejected by App Store Connect processing ({state})"
                )
            if self._clock() >= deadline:
                raise StepTimeout(
                    f"build {build_number} not processed by App Store Connect after {timeout:g} s"
                    f" (state: {state or 'not uploaded yet'})"
                )
            self._sleep(poll)

    def beta_group(self, app_id: str, name: str) -> dict[str, Any]:
        """The app's beta group of that name, created (internal) when missing."""
        body = self._call("GET", "/v1/betaGroups", params={"filter[app]": app_id, "filter[name]": name})
        if body["data"]:
            return dict(body["data"][0])
        created = self._call(
            "POST",
            "/v1/betaGroups",
            json={
                "data": {
                    "type": "betaGroups",
                    "attributes": {"name": name, "isInternalGroup": True},
                    "relationships": {"app": {"data": {"type": "apps", "id": app_id}}},
                }
            },
        )
        return dict(created["data"])

    def add_build_to_group(self, group_id: str, build_id: str) -> None:
        self._call(
            "POST",
            f"/v1/betaGroups/{group_id}/relationships/builds",
            json={"data": [{"type": "builds", "id": build_id}]},
            idempotent=True,
        )

    def remove_build_from_group(self, group_id: str, build_id: str) -> None:
        self._call(
            "DELETE",
            f"/v1/betaGroups/{group_id}/relationships/builds",
            json={"data": [{"type": "builds", "id": build_id}]},
        )

    def submit_for_beta_review(self, build_id: str) -> dict[str, Any]:
        """Needed before an external group may test; a build already submitted is not an error."""
        try:
            body = self._call(
                "POST",
                "/v1/betaAppReviewSubmissions",
                json={
                    "data": {
                        "type": "betaAppReviewSubmissions",
                        "relationships": {"build": {"data": {"type": "builds", "id": build_id}}},
                    }
                },
            )
        except ProviderConflict:
            existing = self._call("GET", "/v1/betaAppReviewSubmissions", params={"filter[build]": build_id})
            return dict(existing["data"][0])
        except ProviderError as exc:
            if exc.status == 422:
                raise BuildRejected(
                    PROVIDER, f"beta review submission refused: {exc.message}", status=422
                ) from exc
            raise
        return dict(body["data"])
