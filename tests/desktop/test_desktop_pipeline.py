"""The desktop pipeline end to end on the real runner: the generated project pushed with git to a
real (bare) repository, its workflow dispatched on the GitHub Actions emulator, runs followed, and
artifacts recorded per platform; plus a failed run, a missing token, a timeout and throttling."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.mobile import credentials as creds
from pipelines import desktop
from tests.emulators.github_actions import (
    ARTIFACTS_SCHEMA,
    PUBLIC_KEY_SCHEMA,
    RUN_SCHEMA,
    RUNS_SCHEMA,
    GitHubActionsEmulator,
)
from tests.mobile.harness import Harness, harness
from tests.servers.asgi import serve


@dataclass
class Stack:
    github: GitHubActionsEmulator
    h: Harness
    repo: Path

    def give_token(self) -> None:
        self.h.vault.put(creds.owner_scope(self.h.owner), creds.GITHUB_TOKEN.name, self.github.token)

    def params(self, **extra: Any) -> dict[str, Any]:
        return {
            "app": "demo",
            "identifier": "com.acme.demo",
            "name": "Acme Demo",
            "version": "1.4.2",
            "server_url": "https://demo.acme.dev",
            "targets": "windows,macos,linux",
            "repo": "acme/demo-desktop",
            "git_remote": str(self.repo),
            **extra,
        }


@pytest.fixture
def stack(tmp_path: Path, bare_repo: Path, shared_temporal: str) -> Iterator[Stack]:
    github = GitHubActionsEmulator({"acme/demo-desktop": bare_repo})
    pipelines = dict(desktop.PIPELINES)
    with serve(github.app) as url, harness(tmp_path, pipelines, shared_temporal, github_api_url=url) as h:
        yield Stack(github, h, bare_repo)


def _git_show(repo: Path, ref: str, path: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), "show", f"{ref}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def test_three_platform_build_records_artifacts(stack: Stack, icon: Path) -> None:
    stack.give_token()
    row = stack.h.run("desktop", stack.params(icon=str(icon)))
    assert row["status"] == "succeeded", row["error"]
    state = row["state"]

    # The project is on the branch, with its workflow; the run was dispatched for that commit.
    assert '"identifier": "com.acme.demo"' in _git_show(
        stack.repo, "launchdeck-desktop", "src-tauri/tauri.conf.json"
    )
    (run,) = stack.github.runs.values()
    assert run["head_sha"] == state["head_sha"] and run["_inputs"] == {"release_tag": "v1.4.2"}
    assert state["run"]["conclusion"] == "success"
    assert set(state["artifacts"]) == {"windows", "macos", "linux"}
    assert state["artifacts"]["macos"]["name"] == "desktop-macos"

    # The signing key reached CI only as an encrypted repository secret, and it is the vault's key.
    app_scope = creds.app_scope(stack.h.app_id)
    assert stack.github.secrets[("acme/demo-desktop", "TAURI_SIGNING_PRIVATE_KEY")] == stack.h.vault.get(
        app_scope, creds.UPDATER_PRIVATE_KEY
    )
    assert state["updater_public_key"] == stack.h.vault.get(app_scope, creds.UPDATER_PUBLIC_KEY)
    assert stack.h.vault.get(app_scope, creds.UPDATER_PRIVATE_KEY) not in "\n".join(row["log"])
    assert state["cost_readings"][0]["meter"] == "run_minutes"

    # Responses match GitHub's documented shapes.
    for exchange in stack.github.recorder.exchanges:
        schema = {
            "/secrets/public-key": PUBLIC_KEY_SCHEMA,
            "/runs": RUNS_SCHEMA,
            "/artifacts": ARTIFACTS_SCHEMA,
        }
        for suffix, shape in schema.items():
            if exchange.method == "GET" and exchange.path.endswith(suffix):
                jsonschema.validate(exchange.response_json, shape)
        if exchange.method == "GET" and exchange.path.split("/")[-1].isdigit():
            jsonschema.validate(exchange.response_json, RUN_SCHEMA)

    # A second deployment keeps the same updater key: installed copies must keep trusting updates.
    again = stack.h.run("desktop", stack.params(version="1.4.3"))
    assert again["status"] == "succeeded", again["error"]
    assert again["state"]["updater_public_key"] == state["updater_public_key"]
    assert again["state"]["head_sha"] != state["head_sha"]


def test_failed_ci_run_fails_the_deployment_with_its_link(stack: Stack) -> None:
    stack.give_token()
    stack.github.failing_platform = "macos"
    row = stack.h.run("desktop", stack.params())
    assert row["status"] == "failed"
    assert "ended failure" in row["error"] and "/actions/runs/" in row["error"]
    assert row["steps"]["generate-project"] == "undone"


def test_missing_token_and_repo_are_named_before_anything_starts(stack: Stack) -> None:
    row = stack.h.run("desktop", stack.params())
    assert row["status"] == "failed" and "GitHub token" in row["error"] and "--github-token" in row["error"]
    assert not stack.github.recorder.exchanges
    row = stack.h.run("desktop", stack.params(repo="demo-desktop"))
    assert row["status"] == "failed" and "owner/name (--repo)" in row["error"]


def test_run_that_never_ends_times_out_and_is_cancelled(stack: Stack) -> None:
    stack.give_token()
    stack.github.never_finish = True
    stack.h.settings.build_wait_seconds = 0.3
    row = stack.h.run("desktop", stack.params(targets="linux"))
    assert row["status"] == "failed" and "still in_progress after 0.3 s" in row["error"]
    assert stack.github.cancelled == list(stack.github.runs)


def test_throttled_api_is_retried(stack: Stack) -> None:
    stack.give_token()
    stack.github.faults.add(429, retry_after=0.2, method="POST", path="/dispatches$")
    stack.github.faults.add(502, method="GET", path=r"/runs/\d+$")
    row = stack.h.run("desktop", stack.params(targets="linux"))
    assert row["status"] == "succeeded", row["error"]
    assert stack.github.faults.injected == 2 and len(stack.github.runs) == 1
