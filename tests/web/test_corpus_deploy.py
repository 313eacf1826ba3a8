"""Real generated apps written elsewhere (../shared/corpus) go live unedited, end to end: a real engine
process, real installs and builds, the app used through its URL with its preview data.

The three apps are the corpus's most unlike the examples: a pages-router JavaScript app on Next 15
(03Patel__saas-notes-app), a Next 14 app with NextAuth v4 and next/font/google (09hanvaik__VibeVin), and
an app in a monorepo subfolder on Next 16 with a custom layout (Arfazrll__AI-Docs-Scanner, apps/web).
They run in order and share one engine (each build costs one to three minutes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.client import EngineClient
from tests.corpus import CORPUS
from tests.servers.engine import engine_process, operator_token

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(url, operator token) of a real engine process."""
    if not (CORPUS / "corpus.json").is_file():
        pytest.fail(f"the corpus is not at {CORPUS}")
    workspace = tmp_path_factory.mktemp("corpus") / "workspace"
    with engine_process(workspace) as (url, _):
        yield url, operator_token(workspace)


@pytest.fixture
def client(engine: tuple[str, str]) -> Iterator[EngineClient]:
    with EngineClient(*engine, timeout=300) as client:
        yield client


def corpus_entry(name: str) -> dict[str, Any]:
    apps: list[dict[str, Any]] = json.loads((CORPUS / "corpus.json").read_text())
    return next(app for app in apps if app["name"] == name)


def deploy(client: EngineClient, name: str, app: str, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    entry = corpus_entry(name)
    copy = tmp_path / name
    shutil.copytree(CORPUS / name, copy, symlinks=True)  # read-only files, as the corpus has them
    root = copy / entry["root"]
    preview = root / entry["preview"]
    started = client.deploy_web(str(root), app=app, preview=str(preview))
    return client.wait(started["deployment_id"], timeout=1800), preview


def get(app_url: str, path: str) -> httpx.Response:
    parsed = httpx.URL(app_url)
    return httpx.get(
        f"http://127.0.0.1:{parsed.port}{path}", headers={"Host": parsed.netloc.decode()}, timeout=60
    )


def live_url(status: dict[str, Any]) -> str:
    deployment = status["deployment"]
    assert deployment["status"] == "succeeded", json.dumps(status, default=str)[:4000]
    verify = next(step for step in status["steps"] if step["name"] == "verify")
    # none of these apps has /api/health: verify said which checks it ran instead
    assert "no /api/health: GET / " in verify["detail"] and "schema tables" in verify["detail"]
    return str(deployment["url"])


def preview_rows(preview: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{preview}?mode=ro", uri=True) as conn:
        return conn.execute(f'SELECT * FROM "{table}"').fetchall()


def post(app_url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    parsed = httpx.URL(app_url)
    return httpx.post(
        f"http://127.0.0.1:{parsed.port}{path}",
        headers={"Host": parsed.netloc.decode()},
        json=body,
        timeout=60,
    )


def test_pages_router_javascript_app(client: EngineClient, tmp_path: Path) -> None:
    status, preview = deploy(client, "03Patel__saas-notes-app", "notes", tmp_path)
    url = live_url(status)
    assert get(url, "/").status_code == 200
    # a preview user logs in (its seed's password): the API route read the production database
    email = preview_rows(preview, "User")[0][1]
    login = post(url, "/api/auth/login", {"email": email, "password": "password"})
    assert login.status_code == 200, login.text
    assert login.json()["user"]["email"] == email and login.json()["user"]["tenant"]["slug"]
    assert post(url, "/api/auth/login", {"email": email, "password": "wrong"}).status_code == 401


def test_next14_nextauth_google_font_app(client: EngineClient, tmp_path: Path) -> None:
    status, preview = deploy(client, "09hanvaik__VibeVin", "vibevin", tmp_path)
    url = live_url(status)
    page = get(url, "/")
    assert page.status_code == 200
    transform = next(step for step in status["steps"] if step["name"] == "transform")
    assert transform["status"] == "succeeded"
    # next/font/google came from @fontsource: the page links a self-hosted woff2 under /_next/static
    fonts = re.findall(r'href="(/_next/static/media/[^"]+\.woff2)"', page.text)
    assert fonts and all(get(url, font).status_code == 200 for font in fonts)
    titles = {
        row[0]
        for row in sqlite3.connect(f"file:{preview}?mode=ro", uri=True).execute("SELECT title FROM content")
    }
    listed = get(url, "/api/content")
    assert listed.status_code == 200, listed.text
    assert titles and all(title in listed.text for title in titles)  # the preview's rows, served


def test_monorepo_subfolder_next16_app(engine: tuple[str, str], tmp_path: Path) -> None:
    """Through the command line, as a user would: the repository's folder and --root apps/web."""
    entry = corpus_entry("Arfazrll__AI-Docs-Scanner")
    repository = tmp_path / "repository"
    shutil.copytree(CORPUS / entry["name"], repository, symlinks=True)
    preview = repository / entry["root"] / entry["preview"]
    url, token = engine
    env = {**os.environ, "LAUNCHDECK_TOKEN": token, "LAUNCHDECK_WORKSPACE": str(tmp_path / "none")}
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "deploy", str(repository), "--root", entry["root"],
         "--name", "docs-scanner", "--preview", str(preview), "--engine", url, "--json",
         "--env", "GROQ_API_KEY=gsk_placeholder_for_the_users_own_key"],  # its Groq client is made at import
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    url = json.loads(result.stdout)["url"]
    assert get(url, "/").status_code == 200
    history = get(url, "/api/history")
    assert history.status_code == 200, history.text
    # `new PrismaClient()` in a route handler, unchanged: the preview's extractions come back
    assert len(history.json()) == len(preview_rows(preview, "Extraction")) > 0
