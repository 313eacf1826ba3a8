"""GitHub Actions as the CI provider for desktop builds: secrets, workflow dispatch, runs, artifacts.

REST API, version 2022-11-28. Repository secrets are encrypted client-side with the repository's public
key as a libsodium sealed box (PyNaCl), as GitHub documents; the plaintext never leaves this process.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx
from nacl.public import PublicKey, SealedBox

from engine.errors import StepTimeout, TerminalError
from engine.providers.http import ProviderClient, RequestRetry

PROVIDER = "github_actions"
API_VERSION = "2022-11-28"


class RunFailed(TerminalError):
    """The workflow run finished without success; the message links to it."""


class GitHubActionsClient:
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
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            },
            secrets=[token],
            transport=transport,
            retry=retry,
            sleep=sleep,
        )
        self._sleep, self._clock = sleep, clock

    def close(self) -> None:
        self.http.close()

    def set_secret(self, repo: str, name: str, value: str) -> None:
        self.http.add_secret(value)
        key = self.http.json("GET", f"/repos/{repo}/actions/secrets/public-key")
        sealed = SealedBox(PublicKey(base64.b64decode(key["key"]))).encrypt(value.encode())
        self.http.request(
            "PUT",
            f"/repos/{repo}/actions/secrets/{name}",
            json={"encrypted_value": base64.b64encode(sealed).decode(), "key_id": key["key_id"]},
        )

    def dispatch(self, repo: str, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        self.http.request(
            "POST",
            f"/repos/{repo}/actions/workflows/{workflow}/dispatches",
            json={"ref": ref, "inputs": inputs},
            idempotent=False,
        )

    def find_run(
        self, repo: str, workflow: str, head_sha: str, *, poll: float, timeout: float
    ) -> dict[str, Any]:
        """The dispatched run of ``workflow`` for ``head_sha`` (dispatch itself returns no run id)."""
        deadline = self._clock() + timeout
        while True:
            body = self.http.json(
                "GET",
                f"/repos/{repo}/actions/workflows/{workflow}/runs",
                params={"event": "workflow_dispatch", "head_sha": head_sha, "per_page": 10},
            )
            if body["workflow_runs"]:
                return dict(body["workflow_runs"][0])
            if self._clock() >= deadline:
                raise StepTimeout(
                    f"no {workflow} run for commit {head_sha[:12]} appeared within {timeout:g} s"
                )
            self._sleep(poll)

    def run(self, repo: str, run_id: int) -> dict[str, Any]:
        return dict(self.http.json("GET", f"/repos/{repo}/actions/runs/{run_id}"))

    def wait_for_run(
        self,
        repo: str,
        run_id: int,
        *,
        poll: float,
        timeout: float,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        deadline = self._clock() + timeout
        while True:
            run = self.run(repo, run_id)
            if on_status:
                on_status(run)
            if run["status"] == "completed":
                if run.get("conclusion") != "success":
                    raise RunFailed(
                        f"CI run {run_id} ended {run.get('conclusion')}: see {run.get('html_url')}"
                    )
                return run
            if self._clock() >= deadline:
                raise StepTimeout(f"CI run {run_id} still {run['status']} after {timeout:g} s")
            self._sleep(poll)

    def cancel_run(self, repo: str, run_id: int) -> None:
        self.http.request("POST", f"/repos/{repo}/actions/runs/{run_id}/cancel", ok=(409,))

    def artifacts(self, repo: str, run_id: int) -> list[dict[str, Any]]:
        body = self.http.json(
            "GET", f"/repos/{repo}/actions/runs/{run_id}/artifacts", params={"per_page": 100}
        )
        return [dict(artifact) for artifact in body["artifacts"]]
