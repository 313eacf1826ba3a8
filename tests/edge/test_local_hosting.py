"""The local edge host through the hosting interface the clouds implement (``HostingProvider``): what the
lifecycle pipelines call on any host does what the edge host's own verbs do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.edge import EdgeHost
from engine.edge.hosting import LocalEdge
from engine.errors import TerminalError
from engine.providers.base import HostingProvider
from engine.rules import HOST_CAPABILITIES
from engine.store import Store
from tests.edge.conftest import fetch, static_site


@pytest.fixture
def local(edge: EdgeHost) -> Iterator[LocalEdge]:
    store = Store(":memory:")
    store.execute("INSERT INTO deployed_apps (name, user_id) VALUES ('shop', 'owner-1')")
    try:
        yield LocalEdge(edge, store)
    finally:
        store.close()


def test_the_edge_host_is_a_hosting_provider_with_its_declared_capabilities(local: LocalEdge) -> None:
    assert isinstance(local, HostingProvider)
    assert local.capabilities is HOST_CAPABILITIES["local"]
    assert local.capabilities.reaches_local_databases and local.capabilities.own_origin
    assert not HOST_CAPABILITIES["vercel"].reaches_local_databases


def test_stage_promote_suspend_resume_rollback_and_destroy(
    local: LocalEdge, edge: EdgeHost, client: httpx.Client, tmp_path: Path
) -> None:
    first = local.stage("shop", static_site(tmp_path / "one", {"index.html": "one"}), {})
    assert not local.exists("shop")  # staged only: nothing is served in production yet
    assert fetch(client, edge, f"{first.id}.shop.localhost").text == "one"  # at its own URL first
    assert local.promote("shop", first.id).url == local.production_url("shop") == edge.url("shop")
    second = local.stage("shop", static_site(tmp_path / "two", {"index.html": "two"}), {})
    local.promote("shop", second.id)
    assert fetch(client, edge, "shop.localhost").text == "two"

    assert "503" in local.suspend("shop")
    assert fetch(client, edge, "shop.localhost").status_code == 503
    local.resume("shop", second.id)
    assert fetch(client, edge, "shop.localhost").text == "two"

    local.promote("shop", first.id)  # a rollback
    assert fetch(client, edge, "shop.localhost").text == "one"
    local.delete_deployment("shop", first.id)  # the live one is never deleted
    local.delete_deployment("shop", second.id)
    with pytest.raises(TerminalError, match="no longer kept on the edge host"):
        local.promote("shop", second.id)

    local.destroy("shop")
    assert not local.exists("shop")
    local.destroy("shop")  # gone already: not an error


def test_a_custom_domain_is_pending_until_the_engines_dns_check(local: LocalEdge) -> None:
    status = local.add_domain("shop", "shop.example.com")
    assert (status.name, status.status) == ("shop.example.com", "pending")
    assert status.verification["CNAME shop.example.com"] == "shop.localhost"
    assert status.verification["TXT _launchdeck.shop.example.com"].startswith("launchdeck-verify=")
    local.remove_domain("shop", "shop.example.com")
    assert local.add_domain("shop", "shop.example.com").verification != status.verification
