"""A platform deploys by upload only, end to end: a real engine process, real builds, the app used
through its URL. The platform shares no folder with the engine: it sends archives over HTTP, through
the API and through `launchdeck deploy --engine URL` run from another working directory.

The tests in this module run in order and share one engine (each build costs about a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.cli.pack import pack
from engine.client import EngineClient
from tests.corpus import CORPUS
from tests.servers.engine import engine_process, operator_token

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "data" / "examples"
# The corpus app used here: pages router, JavaScript only, a committed preview database (see its ORIGIN).
CORPUS_APP = "03Patel__saas-notes-app"
pytestmark = pytest.mark.slow


class Platform:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.client = EngineClient(url, token, timeout=300)

    def upload_folder(self, folder: Path, preview: Path | None) -> dict[str, str]:
        with tempfile.TemporaryDirectory() as scratch:
            archive = pack(folder, Path(scratch) / "app.tar.gz").path
            ids = {"upload_id": self.client.upload(archive, "app")["upload_id"]}
        if preview is not None:
            ids["preview_upload_id"] = self.client.upload(preview, "preview")["upload_id"]
        return ids

    def deploy(self, app: str, ids: dict[str, str], **options: Any) -> dict[str, Any]:
        started = self.client.deploy_web(app=app, **ids, **options)
        return self.client.wait(started["deployment_id"], timeout=900)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workspace = tmp_path_factory.mktemp("by-upload") / "workspace"
    with engine_process(workspace) as (url, _):
        with EngineClient(url, operator_token(workspace)) as operator:
            token = operator.issue_token("builder", "platform")
            operator.override_tier("builder", "pro", "the builder platform's own apps: more than one")
        platform = Platform(url, token)
        yield platform
        platform.client.close()


def get(app_url: str, path: str) -> httpx.Response:
    """GET through the edge host: Python does not resolve *.localhost, so send the Host header."""
    parsed = httpx.URL(app_url)
    return httpx.get(
        f"http://127.0.0.1:{parsed.port}{path}", headers={"Host": parsed.netloc.decode()}, timeout=60
    )


def assert_live(status: dict[str, Any]) -> str:
    deployment = status["deployment"]
    assert deployment["status"] == "succeeded", json.dumps(status, default=str)[:4000]
    return str(deployment["url"])


def corpus_copy(tmp: Path) -> Path:
    copy = tmp / CORPUS_APP
    shutil.copytree(CORPUS / CORPUS_APP, copy, symlinks=True)
    return copy


def test_a_platform_deploys_an_example_by_upload(platform: Platform) -> None:
    shop = EXAMPLES / "shop"
    status = platform.deploy("shop", platform.upload_folder(shop, shop / "preview.sqlite"))
    url = assert_live(status)
    assert get(url, "/api/health").status_code == 200
    assert len(get(url, "/api/products").json()) >= 1  # the preview rows arrived by upload too
    app = platform.client.app("shop")
    assert app["user_id"] == "builder" and app["tier"] == "pro" and app["status"] == "active"


def test_a_platform_deploys_a_corpus_app_by_upload(platform: Platform, tmp_path: Path) -> None:
    app = corpus_copy(tmp_path)
    status = platform.deploy("notes", platform.upload_folder(app, app / "prisma" / "dev.db"))
    url = assert_live(status)
    assert get(url, "/").status_code < 500


def cli_deploy(platform: Platform, folder: Path, app: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LAUNCHDECK_TOKEN": platform.token,
        "LAUNCHDECK_WORKSPACE": str(cwd / "no-workspace-here"),  # the CLI must not need the engine's
    }
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "deploy", str(folder), "--name", app, "--engine", platform.url, "--json"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_launchdeck_deploy_engine_url_from_another_directory(platform: Platform, tmp_path: Path) -> None:
    """The same app again through the CLI: packed the same way, so the engine stores it once."""
    before = {u["upload_id"] for u in platform.client.request("GET", "/api/uploads")}
    result = cli_deploy(platform, EXAMPLES / "shop", "shop", tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["status"] == "live" and get(report["url"], "/api/health").status_code == 200
    after = {u["upload_id"] for u in platform.client.request("GET", "/api/uploads")}
    assert after == before  # identical content: the same upload ids, nothing stored twice
    assert not (tmp_path / "no-workspace-here").exists()


def test_launchdeck_deploy_engine_url_deploys_a_corpus_app(platform: Platform, tmp_path: Path) -> None:
    app = corpus_copy(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli_deploy(platform, app, "notes", elsewhere)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert get(json.loads(result.stdout)["url"], "/").status_code < 500
