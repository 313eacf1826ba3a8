"""One real sandboxed build of an example app, served with its preview data; and a build that fails."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from engine.errors import BuildFailed
from engine.webbuild import BuildResult, build, transform
from tests.servers.asgi import free_port
from tests.webbuild.apps import EXAMPLES

pytestmark = pytest.mark.slow
BUILD_TIMEOUT = 900


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="launchdeck-build-test-", dir="/var/tmp"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def built(scratch: Path) -> BuildResult:
    """taskboard (Prisma 6, native engine) moved to Prisma 7 + libSQL and built in the sandbox."""
    copy = transform(EXAMPLES / "taskboard", scratch / "work", "local-libsql")
    env = {"DATABASE_URL": f"file:{scratch / 'unused-at-build.db'}", "NEXTAUTH_SECRET": "build-secret"}
    return build(
        copy.workdir,
        env,
        timeout=BUILD_TIMEOUT,
        memory_mb=3072,
        log_path=scratch / "build.log",
        npm_cache=scratch / "npm-cache",
    )


def _database_with_preview(scratch: Path, built: BuildResult) -> Path:
    database = scratch / "app.db"
    database.unlink(missing_ok=True)
    try:
        from engine.dbpath.importer import import_preview
    except ImportError:  # the database path's importer is not there: the preview file as it is
        shutil.copyfile(EXAMPLES / "taskboard" / "preview.sqlite", database)
        return database
    report = import_preview(
        built.workdir / "prisma" / "schema.prisma",
        EXAMPLES / "taskboard" / "preview.sqlite",
        f"file:{database}",
        migrations_dir=scratch / "migrations",
    )
    assert report.ok, report
    return database


@pytest.fixture(scope="module")
def server(scratch: Path, built: BuildResult) -> Iterator[str]:
    database = _database_with_preview(scratch, built)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ["PATH"],
        "PORT": str(port),
        "HOSTNAME": "127.0.0.1",
        "NODE_ENV": "production",
        "DATABASE_URL": f"file:{database}",
        "NEXTAUTH_SECRET": "test-secret",
        "NEXTAUTH_URL": base,
    }
    log = (scratch / "server.log").open("wb")
    process = subprocess.Popen(
        built.server_command,
        cwd=built.server_dir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"the built server did not start: {(scratch / 'server.log').read_text()[-2000:]}")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_build_result_describes_what_to_serve(built: BuildResult) -> None:
    assert built.sandbox in ("bwrap", "user")
    assert built.install_command == "npm install" and built.lockfile_regenerated  # Prisma 6 -> 7
    assert built.standalone and (built.server_dir / "server.js").is_file()
    assert built.server_command == ["node", "server.js"]
    assert any(built.static_dir.rglob("*.js"))
    assert (built.server_dir / ".next" / "static").is_dir()  # the standalone server serves its assets
    assert built.build_seconds > 0 and built.seconds >= built.install_seconds + built.build_seconds - 1
    log = built.log_path.read_text()
    assert "$ npm install" in log and "$ npm run build" in log and "Compiled successfully" in log
    # nothing tried to fetch Prisma engine binaries
    assert "binaries.prisma.sh" not in log


def test_health_answers_with_a_database_round_trip(server: str) -> None:
    response = httpx.get(f"{server}/api/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["database"] == "ok" and response.json()["tasks"] == 4


def test_api_returns_the_preview_rows(server: str) -> None:
    with sqlite3.connect(EXAMPLES / "taskboard" / "preview.sqlite") as preview:
        expected = [row[0] for row in preview.execute("SELECT title FROM tasks ORDER BY id")]
    tasks = httpx.get(f"{server}/api/tasks", timeout=10).json()
    assert [task["title"] for task in tasks] == expected
    by_title = {task["title"]: task for task in tasks}
    # the three DateTime storage forms and 0/1 booleans all come back as dates and booleans
    assert by_title["Design the landing page"]["dueAt"] == "2026-01-09T00:00:00.000Z"
    assert by_title["Write the copy"]["dueAt"] == "2026-01-20T17:00:00.000Z"
    assert by_title["Hero headline"]["dueAt"] == "2026-01-18T09:00:00.000Z"
    assert by_title["Design the landing page"]["done"] is True
    assert [label["name"] for label in by_title["Write the copy"]["labels"]] == ["copy", "urgent"]


def test_pages_and_static_assets(server: str) -> None:
    page = httpx.get(f"{server}/projects/1", timeout=10)
    assert page.status_code == 200 and "Hero headline" in page.text
    asset = re.search(r'src="(/_next/static/[^"]+\.js)"', page.text)
    assert asset is not None
    assert httpx.get(f"{server}{asset.group(1)}", timeout=10).status_code == 200


@contextmanager
def _login(server: str, email: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as client:
        csrf = client.get("/api/auth/csrf").json()["csrfToken"]
        client.post(
            "/api/auth/callback/credentials",
            data={"csrfToken": csrf, "email": email, "password": "preview123", "json": "true"},
        )
        assert "next-auth.session-token" in client.cookies, f"{email} could not sign in"
        yield client


def test_login_and_role_checks(server: str) -> None:
    assert httpx.post(f"{server}/api/projects", json={"name": "x"}, timeout=10).status_code == 401
    with _login(server, "mo@taskboard.test") as member:
        created = member.post("/api/projects", json={"name": "Launch party"})
        assert created.status_code == 201 and created.json()["name"] == "Launch party"
    with _login(server, "vi@taskboard.test") as viewer:
        assert viewer.post("/api/projects", json={"name": "nope"}).status_code == 403


def test_broken_code_fails_with_the_log_tail(scratch: Path, built: BuildResult) -> None:
    broken = scratch / "broken"
    # Hard links keep the copy cheap; a changed file is replaced, never edited in place.
    subprocess.run(["cp", "-al", str(built.workdir), str(broken)], check=True)
    shutil.rmtree(broken / ".next")
    page = broken / "app" / "page.tsx"
    page.unlink()
    page.write_text("export default function Home() { return <main>{missingValue</main>; }\n")
    log_path = scratch / "broken.log"
    with pytest.raises(BuildFailed) as failure:
        build(
            broken,
            {"DATABASE_URL": "file:/tmp/x.db"},
            timeout=BUILD_TIMEOUT,
            memory_mb=3072,
            log_path=log_path,
            npm_cache=scratch / "npm-cache",
        )
    message = str(failure.value)
    assert "$ npm ls --depth=0" in log_path.read_text()  # node_modules matched the lockfile: no reinstall
    assert "`npm run build` failed with exit code 1" in message
    assert "app/page.tsx" in failure.value.log_tail  # the compiler's complaint, in the message
    assert str(log_path) in message and log_path.is_file()
