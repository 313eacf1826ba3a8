"""The edge host with real processes: routing by Host header, static files, a Node app server behind it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from engine.edge import EdgeHost, ServerSpec
from engine.errors import Conflict, InputError, TerminalError
from tests.edge.conftest import fetch, node_server, static_site


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_static_files_by_host_header(edge: EdgeHost, client: httpx.Client, tmp_path: Path) -> None:
    edge.stage(
        "blog",
        "d1",
        static_site(
            tmp_path / "blog",
            {
                "index.html": "<h1>blog home</h1>",
                "about.html": "about the blog",
                "docs/index.html": "docs",
                "_next/static/app.js": "console.log(1)",
                "404.html": "blog: page not found",
            },
        ),
    )
    edge.stage("shop", "d1", static_site(tmp_path / "shop", {"index.html": "<h1>shop home</h1>"}))
    edge.promote("blog", "d1")
    edge.promote("shop", "d1")

    assert fetch(client, edge, "blog.localhost").text == "<h1>blog home</h1>"
    assert fetch(client, edge, "shop.localhost").text == "<h1>shop home</h1>"
    assert fetch(client, edge, "blog.localhost", "/about").text == "about the blog"
    assert fetch(client, edge, "blog.localhost", "/docs/").text == "docs"
    script = fetch(client, edge, "blog.localhost", "/_next/static/app.js")
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "immutable" in script.headers["cache-control"]
    again = fetch(
        client,
        edge,
        "blog.localhost",
        "/_next/static/app.js",
        headers={"if-none-match": script.headers["etag"]},
    )
    assert again.status_code == 304
    missing = fetch(client, edge, "blog.localhost", "/nope")
    assert (missing.status_code, missing.text) == (404, "blog: page not found")
    assert fetch(client, edge, "other.localhost").status_code == 404
    assert fetch(client, edge, "example.com").status_code == 404


def test_folders_mounted_at_url_prefixes(edge: EdgeHost, client: httpx.Client, tmp_path: Path) -> None:
    built = static_site(tmp_path / "next-static", {"chunks/app.js": "chunk"})
    public = static_site(
        tmp_path / "public", {"favicon.ico": "icon", "_next/static/chunks/app.js": "shadowed"}
    )
    edge.stage("app", "d1", {"/_next/static": built, "/": public})
    edge.promote("app", "d1")
    assert fetch(client, edge, "app.localhost", "/_next/static/chunks/app.js").text == "chunk"
    assert fetch(client, edge, "app.localhost", "/favicon.ico").text == "icon"
    with pytest.raises(InputError, match="starting with '/'"):
        edge.stage("app", "d2", {"_next": built})


def test_identical_files_are_stored_once(edge: EdgeHost, tmp_path: Path) -> None:
    site = static_site(
        tmp_path / "site", {"index.html": "same bytes", "copy.html": "same bytes", "a.css": "a{}"}
    )
    edge.stage("one", "d1", site)
    edge.stage("one", "d2", site)
    edge.stage("two", "d1", site)
    assert len(edge.blobs.digests()) == 2


def test_symlinks_out_of_the_static_folder_are_not_published(
    edge: EdgeHost, client: httpx.Client, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    site = static_site(tmp_path / "site", {"index.html": "home"})
    (site / "leak.txt").symlink_to(secret)
    edge.stage("app", "d1", site)
    edge.promote("app", "d1")
    assert fetch(client, edge, "app.localhost", "/leak.txt").status_code == 404


def test_server_part_is_proxied_with_its_environment(
    edge: EdgeHost, client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_ENCRYPTION_KEY", "engine-secret-not-for-apps")
    edge.stage(
        "api",
        "d1",
        static_site(tmp_path / "public", {"logo.txt": "static logo"}),
        node_server(tmp_path / "srv", "v1"),
    )
    edge.promote("api", "d1")

    assert fetch(client, edge, "api.localhost", "/logo.txt").text == "static logo"
    response = fetch(
        client,
        edge,
        "api.localhost",
        "/items?x=1",
        method="POST",
        content=b"z" * 5000,
        headers={"x-forwarded-for": "6.6.6.6"},
    )
    assert response.status_code == 200
    assert response.text.startswith("server v1 ")
    assert f"host api.localhost:{edge.port} POST /items?x=1 body=5000 xff=127.0.0.1" in response.text
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert fetch(client, edge, "api.localhost", "/secret-env").text == "none"
    head = fetch(client, edge, "api.localhost", "/logo.txt", method="HEAD")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "11")
    status, body, seconds = edge.health("api")
    assert status == 200 and '"version":"v1"' in body and seconds > 0


def test_responses_stream_through_the_proxy(edge: EdgeHost, client: httpx.Client, tmp_path: Path) -> None:
    edge.stage("api", "d1", None, node_server(tmp_path / "srv", "v1"))
    edge.promote("api", "d1")
    with client.stream("GET", f"{edge.base_url}/stream", headers={"host": "api.localhost"}) as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"first;"  # arrives while the server still holds the response open
        assert fetch(client, edge, "api.localhost", "/release").text == "released"
        assert b"".join(chunks) == b"last"


@pytest.mark.parametrize(("sandbox", "seen"), [("bwrap", "hidden"), ("none", "visible")])
def test_the_sandbox_hides_the_workspace_from_app_servers(
    make_edge: Callable[..., EdgeHost], client: httpx.Client, tmp_path: Path, sandbox: str, seen: str
) -> None:
    edge = make_edge(idle_seconds=None, sandbox=sandbox, single_tenant=True)
    vault_key = tmp_path / "workspace" / "vault.key"
    vault_key.write_text("the engine's key")
    edge.stage("app", "d1", None, node_server(tmp_path / "srv", "v1", PROBE_FILE=str(vault_key)))
    edge.promote("app", "d1")
    assert fetch(client, edge, "app.localhost", "/probe").text == seen


def test_a_disposable_server_bundle_is_linked_not_copied(
    edge: EdgeHost, client: httpx.Client, tmp_path: Path
) -> None:
    spec = node_server(tmp_path / "workcopy", "v1")
    edge.stage("app", "d1", None, ServerSpec(spec.command, spec.cwd, spec.env, link_files=True))
    staged = edge.manifest("app", "d1").server_dir / "server.js"
    assert staged.stat().st_ino == (spec.cwd / "server.js").stat().st_ino
    shutil.rmtree(spec.cwd)  # what the pipeline does with its working copy
    edge.promote("app", "d1")
    assert fetch(client, edge, "app.localhost").text.startswith("server v1")


def test_promote_is_atomic(edge: EdgeHost, client: httpx.Client, tmp_path: Path) -> None:
    for version in ("v1", "v2"):
        edge.stage(
            "app",
            version,
            static_site(tmp_path / f"static-{version}", {"index.html": f"page {version}"}),
            node_server(tmp_path / f"srv-{version}", version),
        )
    edge.promote("app", "v1")
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(trust_env=False, timeout=30) as own:
            while not stop.is_set():
                for path in ("/", "/dynamic"):
                    response = fetch(own, edge, "app.localhost", path)
                    seen.append((response.status_code, response.text.split(" pid ")[0]))

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        wait_for(lambda: len(seen) > 20)
        edge.promote("app", "v2")
        count = len(seen)
        wait_for(lambda: len(seen) > count + 20)
    finally:
        stop.set()
        worker.join()
    assert {status for status, _ in seen} == {200}
    assert {text for _, text in seen} == {"page v1", "server v1", "page v2", "server v2"}
    first_new = next(i for i, (_, text) in enumerate(seen) if text.endswith("v2"))
    assert all(
        text.endswith("v2") for _, text in seen[first_new + 2 :]
    )  # the two paths may straddle the switch
    assert fetch(client, edge, "app.localhost").text == "page v2"


def test_rollback_and_restart_keep_serving(
    make_edge: Callable[..., EdgeHost], client: httpx.Client, tmp_path: Path
) -> None:
    edge = make_edge(idle_seconds=None)
    for version in ("v1", "v2"):
        edge.stage("app", version, None, node_server(tmp_path / f"srv-{version}", version))
    edge.promote("app", "v1")
    edge.promote("app", "v2")
    assert fetch(client, edge, "app.localhost").text.startswith("server v2")
    assert fetch(client, edge, "v1.app.localhost").text.startswith(
        "server v1"
    )  # preview of a kept deployment
    edge.rollback("app", "v1")
    assert fetch(client, edge, "app.localhost").text.startswith("server v1")
    edge.stop()

    restarted = make_edge(
        idle_seconds=None, env_source=lambda app, deployment: {"APP_VERSION": deployment + "-env"}
    )
    assert restarted.live("app") == "v1"
    assert fetch(client, restarted, "app.localhost").text.startswith("server v1-env")


def test_a_first_deployment_can_be_checked_before_it_goes_live(
    edge: EdgeHost, client: httpx.Client, tmp_path: Path
) -> None:
    edge.stage("app", "d1", None, node_server(tmp_path / "srv", "v1"))
    assert fetch(client, edge, "app.localhost").status_code == 404
    status, body, _ = edge.health("app", deployment_id="d1")
    assert status == 200 and '"version":"v1"' in body
    assert edge.live("app") is None


def test_prune_keeps_the_newest_and_the_live_deployment(
    edge: EdgeHost, client: httpx.Client, tmp_path: Path
) -> None:
    for number in range(1, 6):
        edge.stage("app", f"d{number}", static_site(tmp_path / f"s{number}", {"index.html": f"v{number}"}))
    edge.promote("app", "d2")
    assert edge.prune("app", keep=3) == ["d1", "d3"]
    assert [d.deployment_id for d in edge.deployments("app")] == ["d2", "d4", "d5"]
    assert len(edge.blobs.digests()) == 3
    assert fetch(client, edge, "app.localhost").text == "v2"


def test_failed_server_start_keeps_the_live_deployment(
    edge: EdgeHost, client: httpx.Client, tmp_path: Path
) -> None:
    edge.stage("app", "good", None, node_server(tmp_path / "good", "good"))
    edge.promote("app", "good")
    broken = tmp_path / "broken"
    broken.mkdir()
    edge.stage(
        "app", "bad", None, ServerSpec(["node", "-e", "console.error('boom'); process.exit(3)"], broken)
    )
    with pytest.raises(TerminalError, match="exited with code 3"):
        edge.promote("app", "bad")
    with pytest.raises(TerminalError, match="exited with code 3"):  # tried again, not a remembered failure
        edge.promote("app", "bad")
    assert edge.server_log("app", "bad").count("\nboom\n") == 6
    assert edge.live("app") == "good"
    assert fetch(client, edge, "app.localhost").text.startswith("server good")
    assert "boom" in edge.server_log("app", "bad")
    with pytest.raises(Conflict):
        edge.discard("app", "good")
    edge.discard("app", "bad")
    assert [d.deployment_id for d in edge.deployments("app")] == ["good"]


def test_killed_server_comes_back(edge: EdgeHost, client: httpx.Client, tmp_path: Path) -> None:
    edge.stage("app", "d1", None, node_server(tmp_path / "srv", "v1"))
    edge.promote("app", "d1")
    pid = edge.status("app").server_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: edge.status("app").server_state == "running" and edge.status("app").server_pid != pid)
    response = fetch(client, edge, "app.localhost")
    assert response.status_code == 200 and f"pid {pid} " not in response.text
    assert edge.status("app").server_restarts == 1
    assert [s.kind for s in edge.server_starts("app")] == ["promote", "restart"]


def test_scale_to_zero_and_cold_start(
    make_edge: Callable[..., EdgeHost], client: httpx.Client, tmp_path: Path
) -> None:
    edge = make_edge(idle_seconds=0.5)
    edge.stage("app", "d1", None, node_server(tmp_path / "srv", "v1"))
    edge.promote("app", "d1")
    pid = edge.status("app").server_pid
    assert pid is not None
    wait_for(lambda: edge.status("app").server_state == "stopped")
    assert not psutil.pid_exists(pid)
    assert edge.last_cold_start("app") is None

    response = fetch(client, edge, "app.localhost")
    assert response.status_code == 200 and response.text.startswith("server v1")
    cold = edge.last_cold_start("app")
    assert cold is not None and 0 < cold < 30
    assert edge.status("app").last_cold_start_seconds == cold
    start = edge.server_starts("app")[-1]
    assert start.kind == "request" and start.first_response_seconds == cold and cold >= start.seconds


def test_concurrent_requests_share_one_cold_start(make_edge: Callable[..., EdgeHost], tmp_path: Path) -> None:
    edge = make_edge(idle_seconds=1.0)
    edge.stage("app", "d1", None, node_server(tmp_path / "srv", "v1"))
    edge.promote("app", "d1")
    wait_for(lambda: edge.status("app").server_state == "stopped")
    statuses: list[int] = []

    def one() -> None:
        with httpx.Client(trust_env=False, timeout=30) as own:
            statuses.append(fetch(own, edge, "app.localhost", "/dynamic").status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert [s.kind for s in edge.server_starts("app")] == ["promote", "request"]


def test_suspend_answers_503_and_resume_serves_again(
    edge: EdgeHost, client: httpx.Client, tmp_path: Path
) -> None:
    edge.stage(
        "app", "d1", static_site(tmp_path / "s", {"index.html": "home"}), node_server(tmp_path / "srv", "v1")
    )
    edge.promote("app", "d1")
    pid = edge.status("app").server_pid
    edge.suspend("app")
    for path in ("/", "/dynamic"):
        response = fetch(client, edge, "app.localhost", path)
        assert response.status_code == 503
        assert "suspended" in response.text
    assert pid is not None and not psutil.pid_exists(pid)
    edge.resume("app")
    assert fetch(client, edge, "app.localhost").text == "home"
    assert fetch(client, edge, "app.localhost", "/dynamic").text.startswith("server v1")


def test_remove_app_leaves_nothing(edge: EdgeHost, client: httpx.Client, tmp_path: Path) -> None:
    shared = {"shared.css": "body{}"}
    edge.stage("keep", "d1", static_site(tmp_path / "keep", {**shared, "index.html": "keep"}))
    edge.promote("keep", "d1")
    edge.stage(
        "gone",
        "d1",
        static_site(tmp_path / "gone", {**shared, "index.html": "gone v1"}),
        node_server(tmp_path / "srv", "v1"),
    )
    edge.stage("gone", "d2", static_site(tmp_path / "gone2", {**shared, "index.html": "gone v2"}))
    edge.promote("gone", "d1")
    edge.route_domain("gone.example.com", "gone")
    assert fetch(client, edge, "gone.localhost", "/dynamic").status_code == 200
    pid = edge.status("gone").server_pid
    blobs_before = edge.blobs.digests()

    assert set(edge.apps()) == {"keep", "gone"}
    traffic = edge.remove_app("gone")

    assert traffic.requests == 1
    assert pid is not None and not psutil.pid_exists(pid)
    assert not (edge.root / "apps" / "gone").exists()
    assert list((edge.root / "run").glob("gone--*")) == []
    assert len(blobs_before) == 4 and len(edge.blobs.digests()) == 2  # keep's index.html and the shared css
    assert "gone" not in (edge.root / "routes.json").read_text()
    assert "gone" not in edge.usage_counters()
    assert set(edge.apps()) == {"keep"}
    assert fetch(client, edge, "gone.localhost").status_code == 404
    assert fetch(client, edge, "gone.example.com").status_code == 404
    assert fetch(client, edge, "keep.localhost", "/shared.css").text == "body{}"
    leftovers = [p for p in psutil.Process().children(recursive=True) if "server.js" in " ".join(p.cmdline())]
    assert leftovers == []


def test_usage_counters_survive_a_restart(
    make_edge: Callable[..., EdgeHost], client: httpx.Client, tmp_path: Path
) -> None:
    edge = make_edge(idle_seconds=None)
    edge.stage(
        "app",
        "d1",
        static_site(tmp_path / "s", {"index.html": "x" * 1000}),
        node_server(tmp_path / "srv", "v1"),
    )
    edge.promote("app", "d1")
    sent = 0
    for path in ("/", "/", "/dynamic"):
        sent += len(fetch(client, edge, "app.localhost", path).content)
    counters = edge.usage_counters()["app"]
    assert (counters.requests, counters.bytes_out) == (3, sent)
    edge.stop()
    assert make_edge(idle_seconds=None).usage_counters()["app"] == counters


def test_bad_input_is_rejected_with_a_message(edge: EdgeHost, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="lower-case letters"):
        edge.stage("My_App", "d1", tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        edge.stage("app", "d1", tmp_path / "missing")
    with pytest.raises(InputError, match="server folder"):
        edge.stage("app", "d1", None, ServerSpec(["node", "server.js"], tmp_path / "missing"))


ENGINE_THAT_DIES = """
import sys, time
from pathlib import Path
from engine.edge import EdgeHost, ServerSpec
edge = EdgeHost(sys.argv[1], 0, idle_seconds=None, sandbox="none", single_tenant=True)
edge.start()
edge.stage("app", "d1", None, ServerSpec(["node", "server.js"], Path(sys.argv[2]), {"APP_VERSION": "v1"}))
edge.promote("app", "d1")
print(edge.status("app").server_pid, flush=True)
time.sleep(600)
"""


def test_servers_of_an_engine_killed_without_stopping_are_reaped_at_the_next_start(
    make_edge: Callable[..., EdgeHost], client: httpx.Client, tmp_path: Path
) -> None:
    spec = node_server(tmp_path / "srv", "v1")
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE_THAT_DIES, str(tmp_path / "workspace"), str(spec.cwd)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert engine.stdout is not None
        orphan = int(engine.stdout.readline())
    finally:
        engine.kill()
        engine.wait(timeout=10)
        if engine.stdout is not None:
            engine.stdout.close()
    try:
        assert psutil.pid_exists(orphan)  # left behind: nothing stopped it

        edge = make_edge(
            idle_seconds=None,
            sandbox="none",
            single_tenant=True,
            env_source=lambda app, dep: {"APP_VERSION": "v1"},
        )

        wait_for(
            lambda: not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
        )
        assert fetch(client, edge, "app.localhost").text.startswith("server v1")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(orphan, signal.SIGKILL)
