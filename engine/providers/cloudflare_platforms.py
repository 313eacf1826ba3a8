"""Cloudflare Workers for Platforms: each app a user Worker in one dispatch namespace, one dispatch Worker in front.

Workers Paid caps an account at 500 Workers; user Workers in a dispatch namespace have no such cap (the docs'
reference/limits.mdx), so a fleet past the cap runs here. The user Worker API is the Workers one under
``/accounts/{a}/workers/dispatch/namespaces/{ns}/scripts/{s}`` (upload, versions, deployments, assets upload
session), so staging, promoting, rolling back, suspending and destroying work as on plain Workers
(``CloudflareWorkers``); what differs:

- no workers.dev: every request enters through the dispatch Worker, which serves ``<app>.<apps zone>`` by
  subdomain and users' own domains (Cloudflare for SaaS custom hostnames) through a KV map, and applies each
  app's CPU and subrequest limits (custom limits, read from KV per app, a default otherwise);
- a staged version is added to the deployment at 0%, and reached before promote through the dispatch Worker
  with a platform-owned preview token that makes it set ``Cloudflare-Workers-Version-Overrides`` (versioning
  docs: the dispatcher strips the header from every other request);
- custom domains are custom hostnames on the apps zone (TXT ownership and TXT certificate validation), polled
  until active, so a domain is verified before production points at a deployment.

The namespace, the KV namespace, the dispatch Worker and its route are created on first use (``ensure_platform``),
once per engine process. Sources: tests/emulators/SOURCES.md, "Workers for Platforms".
"""

from __future__ import annotations

import contextlib
import hmac
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from engine.errors import PlanLimitReached, ProviderError, ProviderNotFound
from engine.providers.base import Deployment, DomainStatus
from engine.providers.cloudflare_workers import CloudflareWorkers
from engine.providers.http import RateLimiter, RequestRetry

DISPATCH_SCRIPT = "launchdeck-dispatch"
KV_TITLE = "launchdeck-routes"
DISPATCH_COMPATIBILITY_DATE = "2026-04-01"
PREVIEW_HEADER, VERSION_HEADER = "X-Launchdeck-Preview", "X-Launchdeck-Version"
# Custom hostname states (cloudflare-typescript custom-hostnames.ts): these never become active by waiting.
HOSTNAME_FAILED = {"blocked", "moved", "deleted", "pending_deletion", "test_failed", "test_blocked"}
CERTIFICATE_FAILED = {
    "validation_timed_out",
    "issuance_timed_out",
    "deployment_timed_out",
    "initializing_timed_out",
    "expired",
    "deleted",
}

# The dispatch Worker. Routing by subdomain and KV are the docs' own patterns (dynamic-dispatch.mdx,
# hostname-routing.mdx); "Worker not found" and custom limits as in custom-limits.mdx; the version override
# header only for a request carrying the platform's preview token (versioning/versions.mdx).
DISPATCH_WORKER = b"""\
const VERSION_HEADERS = ["Cloudflare-Workers-Version-Overrides", "Cloudflare-Workers-Version-Key"];
const PREVIEW = "X-Launchdeck-Preview";
const VERSION = "X-Launchdeck-Version";

function scriptFor(host, env) {
  const zone = "." + env.APPS_ZONE;
  if (host.endsWith(zone)) {
    const label = host.slice(0, -zone.length);
    return label.includes(".") ? null : label;
  }
  return null;
}

export default {
  async fetch(request, env) {
    const host = new URL(request.url).hostname.toLowerCase();
    const script = scriptFor(host, env) ?? (await env.ROUTES.get("host:" + host));
    if (!script) return new Response("no app is served at " + host, { status: 404 });
    const headers = new Headers(request.headers);
    for (const name of VERSION_HEADERS) headers.delete(name);
    const token = headers.get(PREVIEW);
    const version = headers.get(VERSION);
    headers.delete(PREVIEW);
    headers.delete(VERSION);
    if (token && version && token === env.PREVIEW_TOKEN && /^[0-9a-f-]{36}$/.test(version)) {
      headers.set("Cloudflare-Workers-Version-Overrides", script + '="' + version + '"');
    }
    const limits = JSON.parse((await env.ROUTES.get("limits:" + script)) ?? env.DEFAULT_LIMITS);
    try {
      const user = env.DISPATCHER.get(script, {}, { limits });
      return await user.fetch(new Request(request, { headers }));
    } catch (e) {
      if (e.message.startsWith("Worker not found")) return new Response("no app " + script, { status: 404 });
      if (e.message.includes("CPU time limit")) return new Response("CPU limit exceeded", { status: 503 });
      return new Response(e.message, { status: 500 });
    }
  },
};
"""

_ready: set[tuple[str, str, str]] = set()  # (API base, account, namespace) set up in this process
_ready_lock = threading.Lock()


class CloudflarePlatforms(CloudflareWorkers):
    """``HostingProvider`` for user Workers in a Workers for Platforms dispatch namespace."""

    def __init__(
        self,
        account_id: str,
        api_token: str,
        *,
        namespace: str,
        apps_zone: str,
        limits: Mapping[str, int],
        base_url: str = "https://api.cloudflare.com/client/v4",
        transport: httpx.BaseTransport | None = None,
        retry: RequestRetry | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__(
            account_id, api_token, base_url=base_url, transport=transport, retry=retry, limiter=limiter
        )
        self.namespace, self.apps_zone = namespace, apps_zone.lower().strip(".")
        self.limits = {"cpuMs": int(limits["cpuMs"]), "subRequests": int(limits["subRequests"])}
        # Derived from the API token, so it is as secret as the token and the same in every engine process.
        self.preview_token = hmac.new(
            api_token.encode(), f"preview:{namespace}".encode(), "sha256"
        ).hexdigest()
        self.http.add_secret(self.preview_token)
        self._kv_id: str | None = None

    # -- paths and URLs ----------------------------------------------------------------------------
    def _script(self, project: str) -> str:
        return f"/accounts/{self.account_id}/workers/dispatch/namespaces/{self.namespace}/scripts/{project}"

    def _enable_workers_dev(self, project: str) -> None:
        """User Workers have no workers.dev address: the dispatch Worker is their only way in."""

    def _version_url(self, project: str, version_id: str) -> str:
        return self.production_url(project)  # a version is reached there with the preview headers

    def production_url(self, project: str) -> str:
        base = self.http.base_url
        if base.scheme == "http":  # an emulator: serve on its own port, *.localhost resolves to loopback
            return f"http://{project}.{self.apps_zone}:{base.port}"
        return f"https://{project}.{self.apps_zone}"

    def preview_headers(self, project: str, deployment_id: str) -> dict[str, str]:
        """What reaches a staged version through the dispatch Worker before it is promoted."""
        return {PREVIEW_HEADER: self.preview_token, VERSION_HEADER: deployment_id}

    # -- HostingProvider -----------------------------------------------------------------------------
    def stage(
        self, project: str, files_dir: Path, env: Mapping[str, str], *, framework: str | None = None
    ) -> Deployment:
        """Upload a version; on an existing user Worker it joins the deployment at 0% beside the live one, so
        the preview token reaches it while production traffic stays where it was."""
        self.ensure_platform()
        self._put_value(f"limits:{project}", json.dumps(self.limits))
        staged = super().stage(project, files_dir, env, framework=framework)
        live = self.live_version(project)  # a new user Worker is live at once: nothing to stage beside
        if live is not None and live != staged.id:
            body = {
                "strategy": "percentage",
                "versions": [
                    {"version_id": live, "percentage": 100},
                    {"version_id": staged.id, "percentage": 0},
                ],
            }
            self.http.request("POST", f"{self._script(project)}/deployments", json=body, idempotent=True)
        return Deployment("cloudflare", project, staged.id, self.production_url(project))

    def destroy(self, project: str) -> None:
        super().destroy(project)
        if self._kv_id is not None or self._find_kv() is not None:
            self._delete_value(f"limits:{project}")

    # -- custom hostnames (Cloudflare for SaaS) -----------------------------------------------------
    def add_domain(self, project: str, domain: str) -> DomainStatus:
        """A custom hostname on the apps zone for ``domain`` (created, or the existing one adopted), mapped to
        the app in KV. It serves once active: TXT ownership and certificate validation records are returned
        for the domain's owner to publish, and the domain's CNAME points at the apps zone."""
        self.ensure_platform()
        zone = self._zone_for(self.apps_zone)["id"]
        found = self._hostname(zone, domain)
        if found is None:
            quota = self._result("GET", f"/zones/{zone}/custom_hostnames/quota")
            if quota.get("used", 0) >= quota.get("hard_cap", quota.get("allocated", 0)):
                raise PlanLimitReached(
                    f"the apps zone {self.apps_zone} holds {quota.get('used')} custom hostnames, its cap "
                    f"({quota.get('hard_cap')}): a Cloudflare for SaaS quota increase (Enterprise) lifts it. "
                    "Nothing was created."
                )
            found = self._result(
                "POST",
                f"/zones/{zone}/custom_hostnames",
                json={"hostname": domain, "ssl": {"method": "txt", "type": "dv"}},
            )
        self._put_value(f"host:{domain}", project)
        return _hostname_status(found, self.apps_zone)

    def domain_status(self, project: str, domain: str) -> DomainStatus:
        zone = self._zone_for(self.apps_zone)["id"]
        found = self._hostname(zone, domain)
        if found is None:
            raise ProviderNotFound("cloudflare", f"{domain} is not a custom hostname of {self.apps_zone}")
        return _hostname_status(found, self.apps_zone)

    def remove_domain(self, project: str, domain: str) -> None:
        zone = self._zone_for(self.apps_zone)["id"]
        found = self._hostname(zone, domain)
        if found is not None:
            with contextlib.suppress(ProviderNotFound):
                self.http.request("DELETE", f"/zones/{zone}/custom_hostnames/{found['id']}")
        self._delete_value(f"host:{domain}")

    def _hostname(self, zone: str, domain: str) -> dict[str, Any] | None:
        found = self._result("GET", f"/zones/{zone}/custom_hostnames", params={"hostname": domain})
        match = next((h for h in found if h.get("hostname") == domain), None)
        return None if match is None else dict(match)

    # -- the platform: namespace, KV, dispatch Worker and its route -----------------------------------
    def ensure_platform(self) -> None:
        key = (str(self.http.base_url), self.account_id, self.namespace)
        with _ready_lock:
            if key in _ready:
                return
            self._ensure_namespace()
            kv = self._ensure_kv()
            self._upload_dispatcher(kv)
            self._ensure_route()
            _ready.add(key)

    def _ensure_namespace(self) -> None:
        base = f"/accounts/{self.account_id}/workers/dispatch/namespaces"
        try:
            self._result("GET", f"{base}/{self.namespace}")
        except ProviderNotFound:
            try:
                self._result("POST", base, json={"name": self.namespace})
            except ProviderError as exc:
                if exc.status != 409:  # created meanwhile by another engine: adopt it
                    raise

    def _find_kv(self) -> str | None:
        listed = self._result(
            "GET", f"/accounts/{self.account_id}/storage/kv/namespaces", params={"per_page": 100}
        )
        self._kv_id = next((str(n["id"]) for n in listed if n.get("title") == KV_TITLE), None)
        return self._kv_id

    def _ensure_kv(self) -> str:
        found = self._find_kv()
        if found is None:
            created = self._result(
                "POST", f"/accounts/{self.account_id}/storage/kv/namespaces", json={"title": KV_TITLE}
            )
            found = self._kv_id = str(created["id"])
        return found

    def _upload_dispatcher(self, kv_id: str) -> None:
        metadata = {
            "main_module": "dispatch.js",
            "compatibility_date": DISPATCH_COMPATIBILITY_DATE,
            "bindings": [
                {"type": "dispatch_namespace", "name": "DISPATCHER", "namespace": self.namespace},
                {"type": "kv_namespace", "name": "ROUTES", "namespace_id": kv_id},
                {"type": "plain_text", "name": "APPS_ZONE", "text": self.apps_zone},
                {"type": "plain_text", "name": "DEFAULT_LIMITS", "text": json.dumps(self.limits)},
                {"type": "secret_text", "name": "PREVIEW_TOKEN", "text": self.preview_token},
            ],
        }
        parts: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = [
            ("metadata", (None, json.dumps(metadata), None)),
            ("dispatch.js", ("dispatch.js", DISPATCH_WORKER, "application/javascript+module")),
        ]
        self.http.request(
            "PUT", f"/accounts/{self.account_id}/workers/scripts/{DISPATCH_SCRIPT}", files=parts
        )

    def _ensure_route(self) -> None:
        zone = self._zone_for(self.apps_zone)["id"]
        routes = self._result("GET", f"/zones/{zone}/workers/routes")
        if not any(r.get("pattern") == "*/*" and r.get("script") == DISPATCH_SCRIPT for r in routes):
            self._result(
                "POST", f"/zones/{zone}/workers/routes", json={"pattern": "*/*", "script": DISPATCH_SCRIPT}
            )

    def _values(self, key: str) -> str:
        kv = self._kv_id or self._ensure_kv()
        return f"/accounts/{self.account_id}/storage/kv/namespaces/{kv}/values/{key}"

    def _put_value(self, key: str, value: str) -> None:
        self.http.request("PUT", self._values(key), files=[("value", (None, value, None))], idempotent=True)

    def _delete_value(self, key: str) -> None:
        with contextlib.suppress(ProviderNotFound):
            self.http.request("DELETE", self._values(key), idempotent=True)


def _hostname_status(found: Mapping[str, Any], apps_zone: str) -> DomainStatus:
    """Launchdeck's word for a custom hostname: active (serving with its certificate), failed, or pending,
    with the records its owner publishes: the CNAME to the apps zone, the TXT ownership and certificate ones."""
    ssl = found.get("ssl") or {}
    records = {f"CNAME {found['hostname']}": apps_zone}
    ownership = found.get("ownership_verification") or {}
    if ownership.get("name"):
        records[f"TXT {ownership['name']}"] = str(ownership.get("value"))
    for record in ssl.get("validation_records") or []:
        if record.get("txt_name"):
            records[f"TXT {record['txt_name']}"] = str(record.get("txt_value"))
    hostname, certificate = found.get("status"), ssl.get("status")
    if hostname in HOSTNAME_FAILED or certificate in CERTIFICATE_FAILED:
        status = "failed"
    elif hostname == "active" and certificate == "active":
        status = "active"
    else:
        status = "pending"
    errors = [
        *(found.get("verification_errors") or []),
        *(e.get("message", "") for e in ssl.get("validation_errors") or []),
    ]
    if errors:
        records["errors"] = "; ".join(dict.fromkeys(str(e) for e in errors if e))
    records["hostname status"], records["certificate status"] = str(hostname), str(certificate)
    return DomainStatus(name=str(found["hostname"]), status=status, verification=records)
