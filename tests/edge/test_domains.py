"""Custom domains against a real DNS server on loopback, routed by the real edge host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine import domains
from engine.edge import EdgeHost
from engine.errors import Conflict, InputError, NotFound
from engine.store import Store
from tests.edge.conftest import fetch, static_site
from tests.edge.dns_server import ZoneResolver, dns_server, free_udp_port


@pytest.fixture
def store() -> Iterator[Store]:
    store = Store(":memory:")
    try:
        for name in ("shop", "blog"):
            store.execute("INSERT INTO deployed_apps (name, user_id) VALUES (?, 'owner-1')", [name])
        yield store
    finally:
        store.close()


@pytest.fixture
def dns() -> Iterator[tuple[ZoneResolver, tuple[str, int]]]:
    with dns_server() as running:
        yield running


def publish(
    zone: ZoneResolver, domain: domains.Domain, *, cname: str | None = None, txt: str | None = None
) -> None:
    zone.records[(domain.domain, "CNAME")] = [cname or domain.cname_target]
    zone.records[(domain.txt_name, "TXT")] = [txt or domain.txt_value]


def test_add_returns_the_records_to_create(store: Store) -> None:
    added = domains.add(store, "shop", "Shop.Example.com.")
    assert added.domain == "shop.example.com"
    assert added.cname_target == "shop.localhost"
    assert added.txt_name == "_launchdeck.shop.example.com"
    assert added.txt_value.startswith("launchdeck-verify=") and len(added.txt_value) > 30
    assert (added.dns_status, added.certificate_status) == ("pending", "pending")
    assert domains.add(store, "shop", "shop.example.com").txt_value == added.txt_value
    assert domains.add(store, "blog", "blog.example.com").txt_value != added.txt_value
    with pytest.raises(Conflict, match="belongs to another app"):
        domains.add(store, "blog", "shop.example.com")
    with pytest.raises(NotFound, match="no app named"):
        domains.add(store, "nope", "nope.example.com")


def test_internationalised_names_are_stored_in_dns_form(store: Store) -> None:
    added = domains.add(store, "shop", "Bücher.example")
    assert added.domain == "xn--bcher-kva.example"
    assert added.unicode_name == "bücher.example"


def test_valid_records_verify_the_domain_and_route_it(
    store: Store, dns: tuple[ZoneResolver, tuple[str, int]], edge: EdgeHost, tmp_path: Path
) -> None:
    zone, resolver = dns
    edge.stage("shop", "d1", static_site(tmp_path / "s", {"index.html": "the shop"}))
    edge.promote("shop", "d1")
    added = domains.add(store, "shop", "shop.example.com")
    with httpx.Client(trust_env=False) as client:
        assert fetch(client, edge, "shop.example.com").status_code == 404

        publish(zone, added)
        checked = domains.check(store, "shop", "shop.example.com", resolvers=[resolver], router=edge)

        assert (checked.dns_status, checked.certificate_status) == ("valid", "issued")
        assert checked.verified_at is not None
        assert "not real TLS" in (checked.detail or "") or "no real TLS" in (checked.detail or "")
        assert fetch(client, edge, "shop.example.com").text == "the shop"
    assert store.scalar("SELECT custom_domain FROM deployed_apps WHERE name = 'shop'") == "shop.example.com"


def test_missing_records_stay_pending(store: Store, dns: tuple[ZoneResolver, tuple[str, int]]) -> None:
    _, resolver = dns
    domains.add(store, "shop", "shop.example.com")
    checked = domains.check(store, "shop", "shop.example.com", resolvers=[resolver])
    assert (checked.dns_status, checked.certificate_status) == ("pending", "pending")
    assert "no CNAME record" in (checked.detail or "")


@pytest.mark.parametrize(
    ("cname", "txt", "message"),
    [
        ("elsewhere.example.net", None, "points to elsewhere.example.net"),
        (None, "launchdeck-verify=wrong", "expected"),
    ],
)
def test_a_wrong_record_makes_the_domain_invalid(
    store: Store,
    dns: tuple[ZoneResolver, tuple[str, int]],
    edge: EdgeHost,
    tmp_path: Path,
    cname: str | None,
    txt: str | None,
    message: str,
) -> None:
    zone, resolver = dns
    edge.stage("shop", "d1", static_site(tmp_path / "s", {"index.html": "the shop"}))
    edge.promote("shop", "d1")
    added = domains.add(store, "shop", "shop.example.com")
    publish(zone, added)
    assert domains.check(store, "shop", added.domain, resolvers=[resolver], router=edge).dns_status == "valid"

    publish(zone, added, cname=cname, txt=txt)
    checked = domains.check(store, "shop", added.domain, resolvers=[resolver], router=edge)

    assert (checked.dns_status, checked.certificate_status) == ("invalid", "failed")
    assert message in (checked.detail or "")
    with httpx.Client(trust_env=False) as client:
        assert fetch(client, edge, "shop.example.com").status_code == 404


def test_the_poll_rechecks_what_is_not_verified(
    store: Store, dns: tuple[ZoneResolver, tuple[str, int]]
) -> None:
    zone, resolver = dns
    shop = domains.add(store, "shop", "shop.example.com")
    blog = domains.add(store, "blog", "blog.example.com")
    publish(zone, shop)
    assert [d.domain for d in domains.check_pending(store, resolvers=[resolver])] == [
        "blog.example.com",
        "shop.example.com",
    ]
    publish(zone, blog)
    assert [(d.domain, d.dns_status) for d in domains.check_pending(store, resolvers=[resolver])] == [
        ("blog.example.com", "valid")
    ]
    del zone.records[(shop.domain, "CNAME")]
    rechecked = domains.check_pending(store, resolvers=[resolver], include_valid=True)
    assert {(d.domain, d.dns_status) for d in rechecked} == {
        ("blog.example.com", "valid"),
        ("shop.example.com", "invalid"),
    }


def test_an_unreachable_resolver_changes_nothing(store: Store) -> None:
    domains.add(store, "shop", "shop.example.com")
    checked = domains.check(
        store, "shop", "shop.example.com", resolvers=[("127.0.0.1", free_udp_port())], timeout=0.3
    )
    assert checked.dns_status == "pending"
    assert "could not complete" in (checked.detail or "")


def test_removing_domains(
    store: Store, dns: tuple[ZoneResolver, tuple[str, int]], edge: EdgeHost, tmp_path: Path
) -> None:
    zone, resolver = dns
    edge.stage("shop", "d1", static_site(tmp_path / "s", {"index.html": "the shop"}))
    edge.promote("shop", "d1")
    added = domains.add(store, "shop", "shop.example.com")
    publish(zone, added)
    domains.check(store, "shop", added.domain, resolvers=[resolver], router=edge)
    assert domains.remove_app_domains(store, "shop", router=edge) == ["shop.example.com"]
    assert domains.list_domains(store, "shop") == []
    with httpx.Client(trust_env=False) as client:
        assert fetch(client, edge, "shop.example.com").status_code == 404


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("https://shop.example.com/", "drop the scheme"),
        ("shop.example.com:443", "drop the scheme, port"),
        ("shop", "single label"),
        ("shop..example.com", "empty label"),
        ("shop_1.example.com", "only letters, digits and hyphens"),
        ("-shop.example.com", "must not start or end with a hyphen"),
        ("x" * 64 + ".example.com", "at most 63"),
        (".".join(["a" * 60] * 5), "at most 253"),
        ("*.example.com", "wildcard"),
        ("10.0.0.1", "IP address"),
        ("shop.localhost", "under localhost"),
        ("shop.example.123", "all-numeric"),
        ("shop example.com", "spaces"),
        ("ab--cd.example.com", "internationalised"),
    ],
)
def test_bad_domain_names_are_rejected_with_a_message(store: Store, name: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        domains.add(store, "shop", name)


def test_resolver_addresses_are_parsed() -> None:
    assert domains.parse_resolvers("127.0.0.1:5353, 1.1.1.1,[::1]:53") == [
        ("127.0.0.1", 5353),
        ("1.1.1.1", 53),
        ("::1", 53),
    ]
    with pytest.raises(InputError, match="must be an IP address"):
        domains.parse_resolvers(["dns.google"])
