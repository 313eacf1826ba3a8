"""Emulators served on free loopback ports, and clients pointed at them with a fast retry policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from engine.providers.cloudflare import CloudflarePages
from engine.providers.http import RateLimiter, RequestRetry
from engine.providers.neon import NEON_RETRY, Neon
from engine.providers.turso import Turso
from engine.providers.vercel import Vercel
from tests.emulators.cloudflare import CloudflareEmulator
from tests.emulators.neon import NeonEmulator
from tests.emulators.turso import TursoEmulator
from tests.emulators.vercel import VercelEmulator
from tests.servers.asgi import serve

# Same retry rules as production, shorter waits so fault tests stay fast.
FAST_RETRY = RequestRetry(attempts=5, base_delay=0.01, max_delay=0.05, max_retry_after=5.0)
FAST_NEON_RETRY = dataclasses.replace(NEON_RETRY, base_delay=0.01, max_delay=0.05, max_retry_after=5.0)


@pytest.fixture
def turso_emulator(tmp_path: Path) -> Iterator[tuple[TursoEmulator, str]]:
    emulator = TursoEmulator(tmp_path / "turso")
    try:
        with serve(emulator.app) as url:
            yield emulator, url
    finally:
        emulator.close()


@pytest.fixture
def turso(turso_emulator: tuple[TursoEmulator, str]) -> Iterator[Turso]:
    emulator, url = turso_emulator
    client = Turso(emulator.org, emulator.api_token, base_url=url, retry=FAST_RETRY)
    yield client
    client.close()


@pytest.fixture
def neon_emulator() -> Iterator[tuple[NeonEmulator, str]]:
    emulator = NeonEmulator()
    try:
        with serve(emulator.app) as url:
            yield emulator, url + "/api/v2"
    finally:
        emulator.drop_all()


@pytest.fixture
def neon(neon_emulator: tuple[NeonEmulator, str]) -> Iterator[Neon]:
    emulator, url = neon_emulator
    client = Neon(emulator.api_key, base_url=url, retry=FAST_NEON_RETRY, adopt_wait=0.5)
    yield client
    client.close()


def fetch(url: str) -> httpx.Response:
    """GET an app URL; ``*.localhost`` names are sent to 127.0.0.1 with the Host header (see DESIGN)."""
    parts = urlsplit(url)
    target = f"http://127.0.0.1:{parts.port}{parts.path or '/'}"
    return httpx.get(target, headers={"Host": parts.netloc}, timeout=10)


def write_site(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


@pytest.fixture
def cloudflare_emulator() -> Iterator[tuple[CloudflareEmulator, str]]:
    emulator = CloudflareEmulator()
    try:
        with serve(emulator.app) as url:
            yield emulator, url + "/client/v4"
    finally:
        emulator.close()  # it may have started workerd processes


@pytest.fixture
def cloudflare(cloudflare_emulator: tuple[CloudflareEmulator, str]) -> Iterator[CloudflarePages]:
    emulator, url = cloudflare_emulator
    client = CloudflarePages(
        emulator.account_id,
        emulator.api_token,
        base_url=url,
        retry=FAST_RETRY,
        limiter=RateLimiter(1200, 300),
        poll_interval=0.01,
        deploy_timeout=10,
    )
    yield client
    client.close()


@pytest.fixture
def vercel_emulator() -> Iterator[tuple[VercelEmulator, str]]:
    emulator = VercelEmulator()
    try:
        with serve(emulator.app) as url:
            yield emulator, url
    finally:
        emulator.close()


@pytest.fixture
def vercel(vercel_emulator: tuple[VercelEmulator, str]) -> Iterator[Vercel]:
    emulator, url = vercel_emulator
    client = Vercel(emulator.token, base_url=url, retry=FAST_RETRY, poll_interval=0.01, deploy_timeout=10)
    yield client
    client.close()
