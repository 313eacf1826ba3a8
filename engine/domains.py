"""Custom domains: validate a name, tell the owner which DNS records to create, check them with
dnspython against configurable resolvers, and route a verified domain on the edge host.

States: ``dns: pending -> valid | invalid`` and ``certificate: pending -> issued | failed``. On the local
edge host "issued" only records that DNS is valid: the local host serves plain HTTP and no real TLS
certificate exists (a cloud hosting provider issues the real one).
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import dns.exception
import dns.nameserver
import dns.resolver
import idna

from engine.errors import Conflict, InputError, NotFound
from engine.providers.base import DomainStatus
from engine.store import Store

TXT_PREFIX = "_launchdeck"
LOCAL_CERTIFICATE_NOTE = (
    "local edge host: 'issued' means DNS is verified; the local host serves plain HTTP and holds no real "
    "TLS certificate"
)
_LDH = re.compile(r"^[a-z0-9-]+$")


class DomainRouter(Protocol):
    """What routes a domain's Host header to an app: ``EdgeHost`` or its ``RouteTable``."""

    def route_domain(self, domain: str, app: str) -> None: ...

    def unroute_domain(self, domain: str) -> None: ...


@dataclass(frozen=True)
class Domain:
    domain: str
    app: str
    unicode_name: str
    cname_target: str
    txt_name: str
    txt_value: str
    dns_status: str
    certificate_status: str
    detail: str | None
    checked_at: datetime | None
    verified_at: datetime | None

    def records(self) -> list[dict[str, str]]:
        """The DNS records the owner must create."""
        return [
            {"type": "CNAME", "name": self.domain, "value": self.cname_target},
            {"type": "TXT", "name": self.txt_name, "value": self.txt_value},
        ]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["records"] = self.records()
        return data


# -- validation -----------------------------------------------------------------------------------


def normalize_domain(raw: str, *, edge_hostname: str = "localhost") -> str:
    """The ASCII (IDNA) form of a domain name in lower case, or an InputError that says what is wrong."""
    name = raw.strip()
    example = "give a host name such as shop.example.com"
    if not name:
        raise InputError(f"the domain name is empty: {example}")
    if "://" in name or "/" in name or ":" in name or "@" in name:
        raise InputError(
            f"{_shown(raw)} is not a bare domain name: drop the scheme, port and path ({example})"
        )
    if any(ch.isspace() for ch in name):
        raise InputError(f"{_shown(raw)} contains spaces: {example}")
    if name.startswith("*"):
        raise InputError(f"{_shown(raw)} is a wildcard: add each host name separately")
    name = name.rstrip(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise InputError(f"{_shown(raw)} is an IP address: point a domain name at the app instead")
    labels = name.split(".")
    if len(labels) < 2:
        raise InputError(f"{_shown(raw)} has a single label: {example}")
    for label in labels:
        if not label:
            raise InputError(f"{_shown(raw)} has an empty label (two dots in a row or a leading dot)")
        if label.isascii():
            lower = label.lower()
            if not _LDH.match(lower):
                raise InputError(
                    f"label {label!r} of {_shown(raw)} may contain only letters, digits and hyphens"
                )
            if len(lower) > 63:
                raise InputError(
                    f"label {label[:20]}... of {_shown(raw)} has {len(lower)} characters; at most 63"
                )
            if lower.startswith("-") or lower.endswith("-"):
                raise InputError(f"label {label!r} of {_shown(raw)} must not start or end with a hyphen")
    if name.isascii() and len(name) > 253:
        raise InputError(f"{_shown(raw)} is {len(name)} characters long; a domain name has at most 253")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InputError(f"{_shown(raw)} is not a valid internationalised domain name: {exc}") from None
    if len(ascii_name) > 253:
        raise InputError(f"{_shown(raw)} is {len(ascii_name)} characters long in DNS form; at most 253")
    for label in ascii_name.split("."):
        if len(label) > 63:
            raise InputError(
                f"label {label[:20]}... of {_shown(raw)} is {len(label)} characters in DNS form; at most 63"
            )
    if ascii_name.split(".")[-1].isdigit():
        raise InputError(f"{_shown(raw)} ends in an all-numeric label; top-level domains are not numbers")
    for reserved in ("localhost", edge_hostname):
        if ascii_name == reserved or ascii_name.endswith("." + reserved):
            raise InputError(
                f"{_shown(raw)} is under {reserved}, which Launchdeck serves itself; use your own domain"
            )
    return ascii_name


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 60 else raw[:57] + "...")


def parse_resolvers(values: Sequence[str] | str | None) -> list[tuple[str, int]]:
    """``["127.0.0.1:5353", "1.1.1.1", "[::1]:53"]`` (or one comma-separated string) -> (ip, port)."""
    if values is None:
        return []
    items = [v for v in (values.split(",") if isinstance(values, str) else values)]
    parsed: list[tuple[str, int]] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        match = re.match(
            r"^\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?$|^(?P<v4>[^:]+)(?::(?P<p4>\d+))?$|^(?P<bare6>.*:.*)$", item
        )
        address = port_text = None
        if match:
            address = match.group("v6") or match.group("v4") or match.group("bare6")
            port_text = match.group("p6") or match.group("p4")
        try:
            ipaddress.ip_address(address or "")
        except ValueError:
            raise InputError(
                f"DNS resolver {item!r} must be an IP address with an optional port: 1.1.1.1 or 127.0.0.1:5353"
            ) from None
        port = int(port_text) if port_text else 53
        if not 0 < port < 65536:
            raise InputError(f"DNS resolver {item!r} has port {port}; use 1-65535")
        parsed.append((str(address), port))
    return parsed


# -- store ----------------------------------------------------------------------------------------

_COLUMNS = ", ".join(Domain.__dataclass_fields__)


def get(store: Store, domain: str) -> Domain | None:
    row = store.fetchone(f"SELECT {_COLUMNS} FROM domains WHERE domain = ?", [domain])
    return None if row is None else Domain(**row)


def list_domains(store: Store, app: str | None = None) -> list[Domain]:
    if app is None:
        rows = store.fetchall(f"SELECT {_COLUMNS} FROM domains ORDER BY domain")
    else:
        rows = store.fetchall(f"SELECT {_COLUMNS} FROM domains WHERE app = ? ORDER BY domain", [app])
    return [Domain(**row) for row in rows]


def _require(store: Store, app: str, raw: str, edge_hostname: str) -> Domain:
    domain = normalize_domain(raw, edge_hostname=edge_hostname)
    found = get(store, domain)
    if found is None or found.app != app:
        raise NotFound(
            f"{domain} is not a domain of {app}; add it first with `launchdeck domains add {app} {domain}`"
        )
    return found


# -- operations -----------------------------------------------------------------------------------


def add(store: Store, app: str, raw_domain: str, *, edge_hostname: str = "localhost") -> Domain:
    """Register a domain for an app; returns the records to create (CNAME and TXT). Adding the same
    domain to the same app again returns the same records."""
    domain = normalize_domain(raw_domain, edge_hostname=edge_hostname)
    if store.scalar("SELECT count(*) FROM deployed_apps WHERE name = ?", [app]) == 0:
        raise NotFound(f"no app named {app!r}; deploy it first")
    existing = get(store, domain)
    if existing is not None:
        if existing.app != app:
            raise Conflict(f"{domain} already belongs to another app ({existing.app}); remove it there first")
        return existing
    store.execute(
        "INSERT INTO domains (domain, app, unicode_name, cname_target, txt_name, txt_value) VALUES (?, ?, ?, ?, ?, ?)",
        [
            domain,
            app,
            idna.decode(domain),
            f"{app}.{edge_hostname}",
            f"{TXT_PREFIX}.{domain}",
            f"launchdeck-verify={secrets.token_urlsafe(24)}",
        ],
    )
    added = get(store, domain)
    assert added is not None
    return added


def _resolver(resolvers: Sequence[tuple[str, int]], timeout: float) -> dns.resolver.Resolver:
    if resolvers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port) for address, port in resolvers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = timeout
    resolver.lifetime = timeout * max(1, len(resolvers))
    resolver.cache = None
    return resolver


def _lookup(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list[str] | None:
    """Record values, or None when the name has no record of that type. Resolver failures propagate."""
    try:
        answer = resolver.resolve(name, rdtype, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return None
    if answer.rrset is None:
        return None
    if rdtype == "TXT":
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
    return [r.target.to_text(omit_final_dot=True).lower() for r in answer.rrset]


def check(
    store: Store,
    app: str,
    raw_domain: str,
    *,
    resolvers: Sequence[tuple[str, int]] = (),
    router: DomainRouter | None = None,
    edge_hostname: str = "localhost",
    timeout: float = 3.0,
) -> Domain:
    """Resolve the CNAME and TXT records and move the domain's DNS and certificate states.

    A wrong record makes it invalid (certificate failed); records not there yet leave it pending; both
    right make it valid (certificate issued) and route it on the edge host. Unreachable resolvers
    change nothing and say so in ``detail``.
    """
    found = _require(store, app, raw_domain, edge_hostname)
    resolver = _resolver(resolvers, timeout)
    try:
        cnames = _lookup(resolver, found.domain, "CNAME")
        texts = _lookup(resolver, found.txt_name, "TXT")
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        servers = ", ".join(f"{a}:{p}" for a, p in resolvers) or "the system resolver"
        _save(
            store,
            found,
            found.dns_status,
            found.certificate_status,
            f"DNS check could not complete ({type(exc).__name__}) using {servers}; try again",
        )
        result = get(store, found.domain)
        assert result is not None
        return result
    wrong: list[str] = []
    missing: list[str] = []
    if cnames is None:
        missing.append(f"no CNAME record for {found.domain} yet (create CNAME -> {found.cname_target})")
    elif found.cname_target not in cnames:
        wrong.append(f"CNAME of {found.domain} points to {', '.join(cnames)}, expected {found.cname_target}")
    if texts is None:
        missing.append(f"no TXT record at {found.txt_name} yet (create it with {found.txt_value})")
    elif found.txt_value not in texts:
        wrong.append(
            f"TXT at {found.txt_name} holds {', '.join(repr(t) for t in texts)}, expected {found.txt_value!r}"
        )
    if wrong:
        dns_status, certificate, detail = "invalid", "failed", "; ".join(wrong + missing)
    elif missing:
        if found.dns_status == "valid":  # it was verified and a record has been removed since
            dns_status, certificate = "invalid", "failed"
        else:
            dns_status, certificate = "pending", "pending"
        detail = "; ".join(missing)
    else:
        dns_status, certificate, detail = (
            "valid",
            "issued",
            f"CNAME and TXT verified. {LOCAL_CERTIFICATE_NOTE}",
        )
    _save(store, found, dns_status, certificate, detail)
    if router is not None:
        if dns_status == "valid":
            router.route_domain(found.domain, app)
        else:
            router.unroute_domain(found.domain)
    if dns_status == "valid":
        store.execute(
            "UPDATE deployed_apps SET custom_domain = ?, updated_at = now() WHERE name = ? AND custom_domain IS NULL",
            [found.domain, app],
        )
    result = get(store, found.domain)
    assert result is not None
    return result


def _save(store: Store, domain: Domain, dns_status: str, certificate: str, detail: str) -> None:
    store.execute(
        "UPDATE domains SET dns_status = ?, certificate_status = ?, detail = ?, checked_at = now(), "
        "verified_at = CASE WHEN ? = 'valid' THEN coalesce(verified_at, now()) ELSE NULL END WHERE domain = ?",
        [dns_status, certificate, detail, dns_status, domain.domain],
    )


def remove(
    store: Store,
    app: str,
    raw_domain: str,
    *,
    router: DomainRouter | None = None,
    edge_hostname: str = "localhost",
) -> None:
    found = _require(store, app, raw_domain, edge_hostname)
    store.execute("DELETE FROM domains WHERE domain = ?", [found.domain])
    store.execute(
        "UPDATE deployed_apps SET custom_domain = NULL, updated_at = now() WHERE name = ? AND custom_domain = ?",
        [app, found.domain],
    )
    if router is not None:
        router.unroute_domain(found.domain)


def remove_app_domains(store: Store, app: str, *, router: DomainRouter | None = None) -> list[str]:
    """Delete every domain of an app (for destroy). Returns the names removed."""
    names = [d.domain for d in list_domains(store, app)]
    store.execute("DELETE FROM domains WHERE app = ?", [app])
    if router is not None:
        for name in names:
            router.unroute_domain(name)
    return names


def check_pending(
    store: Store,
    *,
    resolvers: Sequence[tuple[str, int]] = (),
    router: DomainRouter | None = None,
    edge_hostname: str = "localhost",
    include_valid: bool = False,
) -> list[Domain]:
    """Re-check every domain that is not valid yet (the scheduler's domain and certificate poll); with
    ``include_valid``, verified ones too (a removed record makes them invalid and unroutes them)."""
    return [
        check(store, d.app, d.domain, resolvers=resolvers, router=router, edge_hostname=edge_hostname)
        for d in list_domains(store)
        if include_valid or d.dns_status != "valid"
    ]


def check_domain_slot(store: Store, owner: str, domain: str) -> None:
    """A new custom domain must fit the owner's tier (max_custom_domains)."""
    from engine.costs.tiers import default_tiers, subscription_tier
    from engine.errors import TierLimitExceeded

    if get(store, domain) is not None:
        return
    tiers = default_tiers()
    tier = tiers.get(subscription_tier(store, owner))
    count = int(
        store.scalar(
            "SELECT count(*) FROM domains d JOIN deployed_apps a ON a.name = d.app WHERE a.user_id = ?",
            [owner],
        )
    )
    if not tier.allows_count("max_custom_domains", count + 1):
        lifter = tiers.lifting(tier.name, lambda t: t.allows_count("max_custom_domains", count + 1))
        raise TierLimitExceeded(
            f"the {tier.name} tier allows {tier.max_custom_domains if tier.max_custom_domains >= 0 else 'unlimited'} "
            f"custom domain(s) (max_custom_domains) and {owner} has {count}"
            + (f"; the {lifter.name} tier allows more" if lifter else "")
        )


# -- domains on a cloud host (``cloud_domains``): the host validates them and issues their certificate ----


def app_of_domain(store: Store, domain: str) -> str | None:
    """The app a domain is configured for, on the edge or on a cloud host."""
    owner = store.scalar(
        "SELECT app FROM domains WHERE domain = ? UNION ALL SELECT app FROM cloud_domains WHERE domain = ?",
        [domain, domain],
    )
    return None if owner is None else str(owner)


def cloud_domains_of(store: Store, app: str) -> list[str]:
    return [row["domain"] for row in store.fetchall("SELECT domain FROM cloud_domains WHERE app = ?", [app])]


def forget_cloud_domains(store: Store, app: str) -> None:
    store.execute("DELETE FROM cloud_domains WHERE app = ?", [app])


def set_custom_domain(store: Store, app: str, domain: str) -> None:
    """The domain production answers on, once it is active."""
    store.execute(
        "UPDATE deployed_apps SET custom_domain = ?, updated_at = now() WHERE name = ?", [domain, app]
    )


def record_cloud_domain(store: Store, app: str, status: DomainStatus, kind: str) -> None:
    """Keep a cloud domain's state as its host reported it (``cloud_domains``)."""
    records = {k: v for k, v in status.verification.items() if k.split(" ")[0] in ("CNAME", "TXT")}
    state, certificate = {
        "active": ("active", "issued"),
        "verified": ("active", "issued"),
        "failed": ("failed", "failed"),
    }.get(status.status, ("pending", "pending"))
    detail = ", ".join(f"{k} {v}" for k, v in status.verification.items() if k not in records)
    store.execute(
        "INSERT INTO cloud_domains (domain, app, host, status, certificate_status, records, detail, verified_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, CASE WHEN ? = 'active' THEN now()::TIMESTAMP END)"
        " ON CONFLICT (domain) DO UPDATE SET app = excluded.app, host = excluded.host, status = excluded.status,"
        " certificate_status = excluded.certificate_status, records = excluded.records, detail = excluded.detail,"
        " checked_at = now()::TIMESTAMP, verified_at = CASE WHEN excluded.status = 'active'"
        " THEN coalesce(cloud_domains.verified_at, now()::TIMESTAMP) END",
        [status.name, app, kind, state, certificate, json.dumps(records), detail or None, state],
    )
