"""Google Play Developer API (androidpublisher v3): an edit with the bundle on a track, committed.

Authentication is Google's service-account flow (RFC 7523): an RS256 JWT assertion signed with the
account's key is exchanged at the token URL for an access token with the androidpublisher scope.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from engine.errors import InputError, ProviderError
from engine.providers.http import ProviderClient, RequestRetry

PROVIDER = "google_play"
SCOPE = "https://www.googleapis.com/auth/androidpublisher"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API = "/androidpublisher/v3/applications"


class SubmissionRejected(ProviderError):
    """Google Play refused the bundle or the edit (a 4xx on upload or commit)."""


def parse_service_account(text: str) -> dict[str, str]:
    """The JSON key file of a Google Cloud service account; an InputError naming what is wrong."""
    try:
        account = json.loads(text)
    except ValueError as exc:
        raise InputError(
            "the Play service account is not JSON: give the key file downloaded from Google Cloud"
        ) from exc
    missing = [name for name in ("client_email", "private_key") if not account.get(name)]
    if not isinstance(account, dict) or account.get("type") != "service_account" or missing:
        raise InputError(
            "the Play service account key file is incomplete (needs type service_account, client_email "
            f"and private_key; missing: {', '.join(missing) or 'type'})"
        )
    return {str(k): str(v) for k, v in account.items()}


class GooglePlayClient:
    def __init__(
        self,
        service_account: str,
        *,
        base_url: str,
        token_url: str,
        transport: httpx.BaseTransport | None = None,
        retry: RequestRetry | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account = parse_service_account(service_account)
        self.token_url = token_url
        self.http = ProviderClient(
            PROVIDER,
            base_url,
            secrets=[self.account["private_key"]],
            transport=transport,
            retry=retry,
            sleep=sleep,
            timeout=httpx.Timeout(120.0, connect=10.0),
        )
        self._token: tuple[str, float] | None = None

    def close(self) -> None:
        self.http.close()

    def _assertion(self, now: int) -> str:
        try:
            return jwt.encode(
                {
                    "iss": self.account["client_email"],
                    "scope": SCOPE,
                    "aud": self.token_url,
                    "iat": now,
                    "exp": now + 3600,
                },
                self.account["private_key"],
                algorithm="RS256",
                headers={"kid": self.account.get("private_key_id", "")},
            )
        except (ValueError, TypeError) as exc:
            raise InputError("the Play service account's private_key is not a valid RSA key") from exc

    def access_token(self) -> str:
        now = int(time.time())
        if self._token and self._token[1] - now > 60:
            return self._token[0]
        assertion = self._assertion(now)
        self.http.add_secret(assertion)
        try:
            body = self.http.json(
                "POST",
                self.token_url,
                data={"grant_type": GRANT_TYPE, "assertion": assertion},
                idempotent=True,
            )
        except ProviderError as exc:
            if exc.status in (400, 401, 403):
                raise ProviderError(
                    PROVIDER,
                    f"Google refused the service account {self.account['client_email']} ({exc.status}): "
                    "check the key is current and the account has access in Play Console > Users and permissions",
                    status=exc.status,
                ) from exc
            raise
        token = str(body["access_token"])
        self.http.add_secret(token)
        self._token = (token, now + float(body.get("expires_in", 3600)))
        return token

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.access_token()}", **kwargs.pop("headers", {})}
        try:
            return self.http.json(method, path, headers=headers, **kwargs)
        except ProviderError as exc:
            if exc.status == 401:
                raise ProviderError(
                    PROVIDER, "Google Play refused the access token (401)", status=401
                ) from exc
            raise

    def insert_edit(self, package: str) -> str:
        return str(self._call("POST", f"{API}/{package}/edits", json={})["id"])

    def delete_edit(self, package: str, edit_id: str) -> None:
        self._call("DELETE", f"{API}/{package}/edits/{edit_id}")

    def upload_bundle(self, package: str, edit_id: str, bundle: bytes) -> int:
        """Upload an .aab (simple media upload); returns its version code."""
        try:
            body = self._call(
                "POST",
                f"/upload{API}/{package}/edits/{edit_id}/bundles",
                params={"uploadType": "media"},
                content=bundle,
                headers={"Content-Type": "application/octet-stream"},
            )
        except ProviderError as exc:
            if exc.status in (400, 403, 422):
                raise SubmissionRejected(
                    PROVIDER, f"bundle refused: {exc.message}", status=exc.status
                ) from exc
            raise
        return int(body["versionCode"])

    def update_track(
        self,
        package: str,
        edit_id: str,
        track: str,
        version_codes: list[int],
        *,
        release_name: str,
        status: str = "completed",
    ) -> dict[str, Any]:
        release = {
            "name": release_name,
            "versionCodes": [str(code) for code in version_codes],
            "status": status,
        }
        return dict(
            self._call(
                "PUT",
                f"{API}/{package}/edits/{edit_id}/tracks/{track}",
                json={"track": track, "releases": [release]},
            )
        )

    def commit(self, package: str, edit_id: str) -> None:
        try:
            self._call("POST", f"{API}/{package}/edits/{edit_id}:commit")
        except ProviderError as exc:
            if exc.status in (400, 403, 422):
                raise SubmissionRejected(
                    PROVIDER, f"edit refused at commit: {exc.message}", status=exc.status
                ) from exc
            raise
