"""GitHub Actions emulator for desktop builds: secrets, workflow dispatch, runs and artifacts.

There is no GitHub description in ``shared/specs``; the shapes follow GitHub's REST reference (API
version 2022-11-28) and the small JSON schemas below, which the contract tests check responses
against. Repositories are real bare git repositories: a dispatch reads the workflow file from the
pushed ref, so the generated workflow must be on the branch and declare ``workflow_dispatch``, and
the matrix platforms in it decide the artifacts. Runs go queued -> in_progress -> completed over polls.
"""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from nacl.public import PrivateKey, SealedBox
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import Faults, Instrumented, Recorder

RUN_SCHEMA = {
    "type": "object",
    "required": [
        "id",
        "name",
        "head_branch",
        "head_sha",
        "event",
        "status",
        "conclusion",
        "html_url",
        "created_at",
        "updated_at",
        "workflow_id",
    ],
    "properties": {
        "id": {"type": "integer"},
        "status": {"enum": ["queued", "in_progress", "completed"]},
        "conclusion": {"enum": [None, "success", "failure", "cancelled", "timed_out"]},
    },
}
RUNS_SCHEMA = {
    "type": "object",
    "required": ["total_count", "workflow_runs"],
    "properties": {"workflow_runs": {"type": "array", "items": RUN_SCHEMA}},
}
ARTIFACTS_SCHEMA = {
    "type": "object",
    "required": ["total_count", "artifacts"],
    "properties": {
        "artifacts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "id",
                    "node_id",
                    "name",
                    "size_in_bytes",
                    "url",
                    "archive_download_url",
                    "expired",
                ],
            },
        }
    },
}
PUBLIC_KEY_SCHEMA = {"type": "object", "required": ["key_id", "key"]}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"message": message, "documentation_url": "https://docs.github.com/rest", "status": str(status)},
        status_code=status,
    )


class GitHubActionsEmulator:
    def __init__(
        self, repos: dict[str, Path], *, token: str = "ghp_emulated0123456789", polls_to_finish: int = 2
    ) -> None:
        self.repos, self.token, self.polls_to_finish = repos, token, polls_to_finish
        self.secret_key = PrivateKey.generate()
        self.secrets: dict[tuple[str, str], str] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self.failing_platform: str | None = None
        self.never_finish = False
        self.cancelled: list[int] = []
        self.faults = Faults()
        self.recorder = Recorder()
        self._next = 1000
        prefix = "/repos/{owner}/{repo}/actions"
        self.app = Instrumented(
            Starlette(
                routes=[
                    Route(prefix + "/secrets/public-key", self._public_key, methods=["GET"]),
                    Route(prefix + "/secrets/{name}", self._put_secret, methods=["PUT"]),
                    Route(prefix + "/workflows/{workflow}/dispatches", self._dispatch, methods=["POST"]),
                    Route(prefix + "/workflows/{workflow}/runs", self._list_runs, methods=["GET"]),
                    Route(prefix + "/runs/{run_id:int}", self._get_run, methods=["GET"]),
                    Route(prefix + "/runs/{run_id:int}/cancel", self._cancel, methods=["POST"]),
                    Route(prefix + "/runs/{run_id:int}/artifacts", self._artifacts, methods=["GET"]),
                ]
            ),
            self.faults,
            self.recorder,
        )

    def _repo(self, request: Request) -> tuple[str, Path | None, Response | None]:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return "", None, _message(401, "Bad credentials")
        name = f"{request.path_params['owner']}/{request.path_params['repo']}"
        path = self.repos.get(name)
        return name, path, (None if path else _message(404, "Not Found"))

    def _git(self, repo: Path, *args: str) -> str | None:
        done = subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    async def _public_key(self, request: Request) -> Response:
        _, _, refused = self._repo(request)
        if refused:
            return refused
        key = base64.b64encode(bytes(self.secret_key.public_key)).decode()
        return JSONResponse({"key_id": "568250167242549743", "key": key})

    async def _put_secret(self, request: Request) -> Response:
        name, _, refused = self._repo(request)
        if refused:
            return refused
        body = await request.json()
        if body.get("key_id") != "568250167242549743":
            return _message(422, "Invalid key_id")
        plaintext = SealedBox(self.secret_key).decrypt(base64.b64decode(body["encrypted_value"]))
        created = (name, request.path_params["name"]) not in self.secrets
        self.secrets[(name, request.path_params["name"])] = plaintext.decode()
        return Response(status_code=201 if created else 204)

    async def _dispatch(self, request: Request) -> Response:
        name, repo, refused = self._repo(request)
        if refused or repo is None:
            return refused or _message(404, "Not Found")
        body = await request.json()
        ref, workflow = body.get("ref", ""), request.path_params["workflow"]
        sha = self._git(repo, "rev-parse", f"refs/heads/{ref}")
        if sha is None:
            return _message(422, f"No ref found for: {ref}")
        text = self._git(repo, "show", f"{sha.strip()}:.github/workflows/{workflow}")
        if text is None:
            return _message(404, "Not Found")
        document = yaml.safe_load(text)
        triggers = document.get("on") or document.get(True) or {}
        if "workflow_dispatch" not in triggers:
            return _message(422, "Workflow does not have 'workflow_dispatch' trigger")
        required = [
            k for k, v in (triggers["workflow_dispatch"] or {}).get("inputs", {}).items() if v.get("required")
        ]
        missing = [k for k in required if k not in (body.get("inputs") or {})]
        if missing:
            return _message(422, f"Required input '{missing[0]}' not provided")
        platforms = [
            entry["platform"] for entry in document["jobs"]["build"]["strategy"]["matrix"]["include"]
        ]
        self._next += 1
        self.runs[self._next] = {
            "id": self._next,
            "name": document.get("name", workflow),
            "head_branch": ref,
            "head_sha": sha.strip(),
            "event": "workflow_dispatch",
            "status": "queued",
            "conclusion": None,
            "workflow_id": 42,
            "html_url": f"https://github.com/{name}/actions/runs/{self._next}",
            "created_at": _now(),
            "updated_at": _now(),
            "run_started_at": _now(),
            "_polls": 0,
            "_platforms": platforms,
            "_repo": name,
            "_workflow": workflow,
            "_inputs": body.get("inputs") or {},
        }
        return Response(status_code=204)

    @staticmethod
    def _view(run: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in run.items() if not k.startswith("_")}

    async def _list_runs(self, request: Request) -> Response:
        name, _, refused = self._repo(request)
        if refused:
            return refused
        sha = request.query_params.get("head_sha")
        runs = [
            self._view(r)
            for r in self.runs.values()
            if r["_repo"] == name
            and r["_workflow"] == request.path_params["workflow"]
            and sha in (None, r["head_sha"])
        ]
        return JSONResponse({"total_count": len(runs), "workflow_runs": runs[::-1]})

    async def _get_run(self, request: Request) -> Response:
        _, _, refused = self._repo(request)
        if refused:
            return refused
        run = self.runs.get(request.path_params["run_id"])
        if run is None:
            return _message(404, "Not Found")
        if run["status"] != "completed" and not self.never_finish:
            run["_polls"] += 1
            if run["_polls"] >= self.polls_to_finish:
                failed = self.failing_platform in run["_platforms"]
                run.update(
                    status="completed", conclusion="failure" if failed else "success", updated_at=_now()
                )
            else:
                run.update(status="in_progress", updated_at=_now())
        elif self.never_finish:
            run["status"] = "in_progress"
        return JSONResponse(self._view(run))

    async def _cancel(self, request: Request) -> Response:
        _, _, refused = self._repo(request)
        if refused:
            return refused
        run = self.runs.get(request.path_params["run_id"])
        if run is None:
            return _message(404, "Not Found")
        if run["status"] == "completed":
            return _message(409, "Cannot cancel a workflow run that is completed.")
        run.update(status="completed", conclusion="cancelled")
        self.cancelled.append(run["id"])
        return JSONResponse({}, status_code=202)

    async def _artifacts(self, request: Request) -> Response:
        name, _, refused = self._repo(request)
        if refused:
            return refused
        run = self.runs.get(request.path_params["run_id"])
        if run is None:
            return _message(404, "Not Found")
        done = run["conclusion"] == "success"
        artifacts = (
            [
                {
                    "id": run["id"] * 10 + i,
                    "node_id": f"MDg6QXJ0aWZhY3Q{run['id']}{i}",
                    "name": f"desktop-{platform}",
                    "size_in_bytes": 9_000_000 + i,
                    "expired": False,
                    "created_at": run["updated_at"],
                    "url": f"https://api.github.com/repos/{name}/actions/artifacts/{run['id'] * 10 + i}",
                    "archive_download_url": f"https://api.github.com/repos/{name}/actions/artifacts/{run['id'] * 10 + i}/zip",
                }
                for i, platform in enumerate(run["_platforms"])
            ]
            if done
            else []
        )
        return JSONResponse({"total_count": len(artifacts), "artifacts": artifacts})
