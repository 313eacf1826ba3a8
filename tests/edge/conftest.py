"""Edge host fixtures: a started EdgeHost on a free port (always stopped), a tiny Node app server, and
an HTTP client that reaches `<app>.localhost` the way Python must: loopback plus a Host header."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from engine.edge import EdgeHost, ServerSpec

APP_SERVER_JS = Path(__file__).with_name("app_server.js")


@pytest.fixture
def make_edge(tmp_path: Path) -> Iterator[Callable[..., EdgeHost]]:
    """Start edge hosts on the test's workspace; every one is stopped at the end, whatever happens."""
    started: list[EdgeHost] = []

    def make(**options: object) -> EdgeHost:
        host = EdgeHost(tmp_path / "workspace", 0, **options)  # type: ignore[arg-type]
        started.append(host)
        host.start()
        return host

    try:
        yield make
    finally:
        for host in started:
            host.stop()


@pytest.fixture
def edge(make_edge: Callable[..., EdgeHost]) -> EdgeHost:
    return make_edge(idle_seconds=None)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=30) as http:
        yield http


def fetch(
    client: httpx.Client, edge: EdgeHost, host: str, path: str = "/", **kwargs: object
) -> httpx.Response:
    headers = {"host": f"{host}:{edge.port}", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return client.request(kwargs.pop("method", "GET"), f"{edge.base_url}{path}", headers=headers, **kwargs)  # type: ignore[arg-type]


def static_site(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def node_server(root: Path, version: str, **env: str) -> ServerSpec:
    """A server bundle folder holding the tiny Node server; APP_VERSION tells deployments apart."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(APP_SERVER_JS, root / "server.js")
    return ServerSpec(["node", "server.js"], root, {"APP_VERSION": version, **env})
