"""Cloudflare Pages client against the emulator: direct upload as wrangler does it, served for real."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.errors import InputError, ProviderError
from engine.providers.cloudflare import CloudflarePages
from engine.providers.cloudflare_assets import asset_hash
from engine.providers.http import RateLimiter
from tests.emulators.cloudflare import CloudflareEmulator
from tests.providers.conftest import FAST_RETRY, fetch, write_site

SITE = {
    "index.html": "<h1>Hello v1</h1>",
    "about/index.html": "<h1>About</h1>",
    "assets/app.js": "console.log('app')",
    "assets/copy.js": "console.log('app')",  # same content and extension: one upload
    "assets/app.txt": "console.log('app')",  # same content, other extension: another hash
    "_headers": "/*\n  X-Frame-Options: DENY\n",
    "node_modules/left-pad/index.js": "ignored",
}


def test_hash_is_blake3_of_base64_plus_extension() -> None:
    # Independent reference: base64("hello") = "aGVsbG8=", so the input is "aGVsbG8=html".
    from blake3 import blake3

    assert asset_hash(b"hello", "a.html") == blake3(b"aGVsbG8=html").hexdigest()[:32]
    assert asset_hash(b"hello", "a.html") != asset_hash(b"hello", "a.htm")
    assert asset_hash(b"hello", "README") == blake3(b"aGVsbG8=").hexdigest()[:32]


def test_deploy_serves_the_site_at_its_own_url_and_in_production(
    cloudflare: CloudflarePages, cloudflare_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    emulator, _ = cloudflare_emulator
    site = write_site(tmp_path / "out", SITE)
    deployment = cloudflare.deploy(
        "blog", site, {"DATABASE_URL": "libsql://db.example", "API_KEY": "s3cr3t-v4lue"}
    )
    page = fetch(deployment.url)
    assert page.status_code == 200 and "Hello v1" in page.text
    assert fetch(deployment.url + "/about").text == "<h1>About</h1>"
    assert (
        fetch(f"http://blog.pages.localhost:{deployment.url.rsplit(':', 1)[1]}/").text == "<h1>Hello v1</h1>"
    )
    # index, about, app.js (= copy.js, one hash) and app.txt; node_modules and _headers are not assets
    assert emulator.uploads == 4
    project = emulator.projects["blog"]
    assert project.env_vars["API_KEY"] == {"type": "secret_text", "value": "s3cr3t-v4lue"}
    assert project.deployments[deployment.id].special_files["_headers"].startswith(b"/*")
    assert "/node_modules/left-pad/index.js" not in project.deployments[deployment.id].manifest


def test_redeploy_with_one_file_changed_uploads_exactly_one(
    cloudflare: CloudflarePages, cloudflare_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    emulator, _ = cloudflare_emulator
    site = write_site(tmp_path / "out", {f"page{i}.html": f"<p>{i}</p>" for i in range(50)})
    cloudflare.deploy("docs", site, {})
    before = emulator.uploads
    (site / "page7.html").write_text("<p>seven, edited</p>")
    second = cloudflare.deploy("docs", site, {})
    assert emulator.uploads - before == 1
    assert cloudflare.upload_stats["docs"] == {
        "files": 50,
        "uploaded": 1,
        "bytes": len("<p>seven, edited</p>"),
    }
    assert fetch(second.url + "/page7.html").text == "<p>seven, edited</p>"


def test_rollback_repoints_production_to_the_earlier_deployment(
    cloudflare: CloudflarePages, tmp_path: Path
) -> None:
    first = cloudflare.deploy("shop", write_site(tmp_path / "v1", {"index.html": "v1"}), {})
    cloudflare.deploy("shop", write_site(tmp_path / "v2", {"index.html": "v2"}), {})
    production = f"http://shop.pages.localhost:{first.url.rsplit(':', 1)[1]}/"
    assert fetch(production).text == "v2"
    rolled = cloudflare.rollback("shop", first.id)
    assert rolled.id == first.id and fetch(production).text == "v1"


def test_an_expired_upload_token_is_replaced_and_the_upload_finishes(
    cloudflare: CloudflarePages, cloudflare_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    emulator, _ = cloudflare_emulator
    cloudflare.deploy("app", write_site(tmp_path / "v1", {"index.html": "one"}), {})
    emulator.expire_upload_tokens()  # the client still holds a JWT whose exp has not passed
    deployment = cloudflare.deploy("app", write_site(tmp_path / "v2", {"index.html": "two"}), {})
    assert fetch(deployment.url).text == "two"
    statuses = [e.status for e in emulator.recorder.matching("POST", "/pages/assets/check-missing$")]
    assert statuses == [200, 401, 200]
    assert len(emulator.recorder.matching("GET", "/upload-token$")) == 2


def test_429_storm_is_ridden_out_honouring_retry_after(
    cloudflare: CloudflarePages, cloudflare_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    emulator, _ = cloudflare_emulator
    emulator.faults.add(429, times=3, retry_after=0.3, path="/pages/")
    started = time.monotonic()
    deployment = cloudflare.deploy("storm", write_site(tmp_path / "out", {"index.html": "ok"}), {})
    assert fetch(deployment.url).text == "ok"
    assert time.monotonic() - started >= 0.9  # three waits of Retry-After
    assert len(emulator.projects) == 1 and len(emulator.projects["storm"].deployments) == 1


def test_client_limiter_keeps_under_the_server_limit(tmp_path: Path) -> None:
    from tests.servers.asgi import serve

    site = write_site(tmp_path / "out", {"index.html": "x"})
    for limited in (False, True):
        emulator = CloudflareEmulator(rate_limit=12, rate_period=1.0)
        with serve(emulator.app) as url:
            limiter = RateLimiter(12, 1.05) if limited else RateLimiter(10_000, 1.0)
            client = CloudflarePages(
                emulator.account_id,
                emulator.api_token,
                base_url=url + "/client/v4",
                retry=FAST_RETRY,
                limiter=limiter,
                poll_interval=0.01,
            )
            for n in range(3):
                client.deploy(f"site-{n}", site, {})
            client.close()
        assert (emulator.window.rejected == 0) is limited
        assert len(emulator.projects) == 3


def test_a_failed_deployment_raises_with_the_stage(
    cloudflare: CloudflarePages, cloudflare_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    emulator, _ = cloudflare_emulator
    emulator.fail_next_deployment = True
    with pytest.raises(ProviderError, match="ended with failure in stage deploy"):
        cloudflare.deploy("broken", write_site(tmp_path / "out", {"index.html": "x"}), {})


def test_custom_domain_goes_from_pending_to_active(cloudflare: CloudflarePages, tmp_path: Path) -> None:
    cloudflare.deploy("brand", write_site(tmp_path / "out", {"index.html": "x"}), {})
    added = cloudflare.add_domain("brand", "www.example.com")
    assert added.status == "pending"
    assert cloudflare.add_domain("brand", "www.example.com").name == "www.example.com"  # again: adopted
    assert cloudflare.domain("brand", "www.example.com").status == "active"
    with pytest.raises(ProviderError, match="not a valid domain"):
        cloudflare.add_domain("brand", "not a domain")


def test_destroy_removes_the_project_and_is_idempotent(
    cloudflare: CloudflarePages, cloudflare_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    emulator, _ = cloudflare_emulator
    deployment = cloudflare.deploy("gone", write_site(tmp_path / "out", {"index.html": "x"}), {})
    cloudflare.destroy("gone")
    cloudflare.destroy("gone")
    assert "gone" not in emulator.projects and fetch(deployment.url).status_code == 404


def test_oversized_file_is_refused_before_any_upload(
    cloudflare: CloudflarePages, cloudflare_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    emulator, _ = cloudflare_emulator
    site = write_site(tmp_path / "out", {"index.html": "x"})
    with (site / "video.mp4").open("wb") as big:
        big.truncate(26 * 1024 * 1024)
    with pytest.raises(InputError, match=r"video\.mp4 is 27,262,976 bytes"):
        cloudflare.deploy("big", site, {})
    assert emulator.uploads == 0


def test_wrong_token_is_terminal_and_redacted(
    cloudflare_emulator: tuple[CloudflareEmulator, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator, url = cloudflare_emulator
    client = CloudflarePages(
        emulator.account_id,
        "bad-token-zyxwvu987654",
        base_url=url,
        retry=FAST_RETRY,
        limiter=RateLimiter(100, 1),
    )
    with caplog.at_level("DEBUG"), pytest.raises(ProviderError, match="Authentication error") as caught:
        client.deploy("x", write_site(tmp_path / "out", {"index.html": "x"}), {})
    client.close()
    assert caught.value.status == 403
    assert "bad-token-zyxwvu987654" not in str(caught.value) + caplog.text
