"""Cloudflare Workers with static assets: versions staged at their own preview URL, then promoted.

The sequence is wrangler 4.86's (``wrangler deploy`` / ``wrangler versions upload``; see
tests/emulators/SOURCES.md for each endpoint's source): an assets upload session answers which files
Cloudflare lacks, grouped in buckets; the buckets go as multipart base64 parts with the session JWT,
three at a time, and the last one answers a completion JWT. A script that does not exist yet is
created with ``PUT .../scripts/{name}``, which is live at once; later uploads are versions, live only
when a deployment points 100% of traffic at them. Every request goes through the account's shared
Cloudflare limiter (1,200 requests per 5 minutes), as the Pages client's do.

``files_dir`` is either a Worker bundle (``worker.json``, ``modules/``, ``assets/``) or a plain folder
of static files, deployed with a four-line module that hands every request to the assets, because the
Versions API requires a main module.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from engine.errors import ConfigError, InputError, ProviderError, ProviderNotFound, ProviderUnavailable
from engine.providers import cloudflare_assets as assets
from engine.providers.base import Deployment, DomainStatus, serve_suspended_page
from engine.providers.cloudflare import RATE_LIMIT, RATE_PERIOD, RATE_SLACK, error_message
from engine.providers.http import ProviderClient, RateLimiter, RequestRetry, looks_secret, shared_limiter
from engine.rules import HOST_CAPABILITIES

MAX_ASSET_COUNT = 20000  # direct-upload.mdx, "Limitations"
SCRIPT_NOT_FOUND = 10007  # wrangler src/utils/worker-not-found-error.ts
SECRETS_CHANGED = 10220  # wrangler versions/rollback: CANNOT_ROLLBACK_WITH_MODIFIED_SECERT_CODE
# Config files wrangler keeps out of the asset manifest (workers-shared/utils/helpers.ts); the first
# two go to the metadata's ``assets.config`` instead.
ASSET_CONFIG_FILES = ("_redirects", "_headers", ".assetsignore")
# wrangler's DEFAULT_MODULE_RULES plus ES modules; other files in modules/ (README.md, *.map) are skipped.
MODULE_TYPES = {
    ".js": "application/javascript+module",
    ".mjs": "application/javascript+module",
    ".cjs": "application/javascript",
    ".wasm": "application/wasm",
    ".txt": "text/plain",
    ".html": "text/plain",
    ".sql": "text/plain",
    ".bin": "application/octet-stream",
}
ASSETS_ONLY_MODULE = b"export default { fetch: (request, env) => env.ASSETS.fetch(request) };\n"
ASSETS_ONLY_COMPATIBILITY_DATE = "2026-04-01"
log = logging.getLogger("launchdeck.providers.cloudflare")
# GraphQL Analytics API, dataset and fields as in cloudflare-docs "Querying Workers Metrics with GraphQL";
# the window is half-open so that consecutive hours never count an invocation twice (see SOURCES.md).
INVOCATIONS_QUERY = """
query WorkerInvocations($accountTag: string!, $scripts: [string!], $start: Time!, $end: Time!) {
  viewer {
    accounts(filter: {accountTag: $accountTag}) {
      workersInvocationsAdaptive(
        limit: 10000
        filter: {scriptName_in: $scripts, datetime_geq: $start, datetime_lt: $end}
      ) {
        sum { requests errors subrequests cpuTimeUs }
        quantiles { cpuTimeP50 cpuTimeP99 }
        dimensions { scriptName status }
      }
    }
  }
}
"""
# Scripts per analytics query: a fleet's hour is a handful of queries, well inside the GraphQL API's
# 300 queries per 5 minutes, and its rows (scripts x statuses) inside the query's limit.
SCRIPTS_PER_QUERY = 500
# GraphQL error messages the docs list under "Rate limits exceeded" (they come with HTTP 200).
GRAPHQL_RATE_LIMITED = ("limit reached", "quota exceeded", "rate limiter budget depleted")


@dataclass(frozen=True)
class Bundle:
    metadata: dict[str, Any]  # main_module, compatibility_date, compatibility_flags
    modules: list[tuple[str, bytes, str]]  # (name, content, content type)
    assets: list[assets.Asset]
    asset_config: dict[str, str]  # _redirects / _headers text


def read_bundle(files_dir: Path) -> Bundle:
    """A Worker bundle folder (``worker.json`` + ``modules/`` + ``assets/``) or a folder of static files."""
    spec = files_dir / "worker.json"
    if not spec.is_file():
        return Bundle(
            {"main_module": "worker.js", "compatibility_date": ASSETS_ONLY_COMPATIBILITY_DATE},
            [("worker.js", ASSETS_ONLY_MODULE, MODULE_TYPES[".js"])],
            collect_assets(files_dir),
            _asset_config(files_dir),
        )
    try:
        worker = json.loads(spec.read_text())
        main = str(worker["main_module"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{spec} must be JSON with main_module ({exc})") from exc
    module_dir = files_dir / "modules"
    modules = [
        (path.relative_to(module_dir).as_posix(), path.read_bytes(), MODULE_TYPES[path.suffix])
        for path in sorted(module_dir.rglob("*"))
        if path.is_file() and path.suffix in MODULE_TYPES
    ]
    if main not in {name for name, _, _ in modules}:
        raise InputError(f"{module_dir} has no {main} (worker.json main_module)")
    metadata = {
        "main_module": main,
        "compatibility_date": worker.get("compatibility_date"),
        "compatibility_flags": list(worker.get("compatibility_flags") or []),
    }
    asset_dir = files_dir / "assets"
    found = collect_assets(asset_dir, allow_empty=True) if asset_dir.is_dir() else []
    return Bundle({k: v for k, v in metadata.items() if v}, modules, found, _asset_config(asset_dir))


def collect_assets(root: Path, *, allow_empty: bool = False) -> list[assets.Asset]:
    """Every file under ``root`` but the asset config files; hashed as Pages hashes (wrangler hash.ts)."""
    if not root.is_dir():
        raise InputError(f"{root} is not a directory: give the build output folder to deploy")
    found: list[assets.Asset] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() or not path.is_file() or relative in ASSET_CONFIG_FILES:
            continue
        size = path.stat().st_size
        if size > assets.MAX_ASSET_SIZE:
            raise InputError(
                f"{relative} is {size:,} bytes; Workers assets are at most "
                f"{assets.MAX_ASSET_SIZE:,} bytes each"
            )
        found.append(
            assets.Asset(
                path,
                "/" + relative,
                assets.asset_hash(path.read_bytes(), path.name),
                size,
                _content_type(path.name),
            )
        )
    if len(found) > MAX_ASSET_COUNT:
        raise InputError(
            f"{root} has {len(found):,} files; a Worker takes at most {MAX_ASSET_COUNT:,} assets"
        )
    if not found and not allow_empty:
        raise InputError(f"{root} has no files to deploy")
    return found


def _content_type(name: str) -> str:
    # wrangler's getContentType: text types get an explicit charset, and the part's type is what the
    # asset is served with.
    kind = assets.content_type(name)
    return f"{kind}; charset=utf-8" if kind.startswith("text/") and "charset" not in kind else kind


def _asset_config(root: Path) -> dict[str, str]:
    return {name: (root / name).read_text() for name in ("_redirects", "_headers") if (root / name).is_file()}


class CloudflareWorkers:
    """``HostingProvider`` for Cloudflare Workers. One instance per account; thread-safe."""

    name = "cloudflare"
    capabilities = HOST_CAPABILITIES["cloudflare"]

    def __init__(
        self,
        account_id: str,
        api_token: str,
        *,
        base_url: str = "https://api.cloudflare.com/client/v4",
        transport: httpx.BaseTransport | None = None,
        retry: RequestRetry | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.account_id = account_id
        self.http = ProviderClient(
            "cloudflare",
            base_url,
            headers={"Authorization": f"Bearer {api_token}"},
            secrets=[api_token],
            transport=transport,
            retry=retry,
            limiter=limiter or shared_limiter("cloudflare", account_id, RATE_LIMIT, RATE_PERIOD * RATE_SLACK),
            error_message=error_message,
        )
        self._subdomain: str | None = None
        # Per script, from the last stage: files in the manifest, files and raw bytes uploaded.
        self.upload_stats: dict[str, dict[str, int]] = {}

    def close(self) -> None:
        self.http.close()

    def _script(self, project: str) -> str:
        return f"/accounts/{self.account_id}/workers/scripts/{project}"

    def _result(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.http.json(method, url, **kwargs)["result"]

    # -- HostingProvider -----------------------------------------------------------------------------
    def stage(
        self, project: str, files_dir: Path, env: Mapping[str, str], *, framework: str | None = None
    ) -> Deployment:
        """Upload a version. A new script is live at once (there is nothing to protect yet); an existing
        one keeps serving its live version while the new one answers at its preview URL."""
        bundle = read_bundle(files_dir)
        completion = self.sync_assets(project, bundle.assets)
        for name, value in env.items():
            if looks_secret(name):
                self.http.add_secret(value)
        # Every value as secret_text: env vars can hold credentials, and Cloudflare never shows these back.
        bindings: list[dict[str, Any]] = [{"type": "assets", "name": "ASSETS"}] if bundle.assets else []
        bindings += [{"type": "secret_text", "name": k, "text": v} for k, v in env.items()]
        metadata = {**bundle.metadata, "bindings": bindings}
        if bundle.assets:
            metadata["assets"] = {"jwt": completion, "config": bundle.asset_config}
        parts: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = [
            ("metadata", (None, json.dumps(metadata), None))
        ]
        parts += [(name, (name, content, kind)) for name, content, kind in bundle.modules]
        try:
            version = self._result("POST", f"{self._script(project)}/versions", files=parts)
        except ProviderNotFound as exc:
            if f"code {SCRIPT_NOT_FOUND}" not in str(exc):
                raise
            return self._create(project, parts)
        self._enable_workers_dev(project)
        return Deployment(
            "cloudflare", project, str(version["id"]), self._version_url(project, str(version["id"]))
        )

    def suspend(self, project: str) -> str:
        return serve_suspended_page(self, project)

    def resume(self, project: str, deployment_id: str) -> str:
        self.promote(project, deployment_id)
        return f"{self.name} production serves deployment {deployment_id} again"

    def promote(self, project: str, deployment_id: str) -> Deployment:
        """Send 100% of traffic to a version. Rolling back to a version whose secrets differ from the live
        one's needs ``force``, as ``wrangler rollback`` does after asking: the version keeps its own."""
        body = {"strategy": "percentage", "versions": [{"version_id": deployment_id, "percentage": 100}]}
        url = f"{self._script(project)}/deployments"
        try:
            self.http.request("POST", url, json=body, idempotent=True)
        except ProviderError as exc:
            if f"code {SECRETS_CHANGED}" not in str(exc):
                raise
            log.warning(
                self.http.clean(f"{project}: secrets changed since {deployment_id}; deploying it anyway")
            )
            self.http.request("POST", url, params={"force": "true"}, json=body, idempotent=True)
        return Deployment("cloudflare", project, deployment_id, self.production_url(project))

    rollback = promote

    def production_url(self, project: str) -> str:
        return self._workers_url(project)

    def _version_url(self, project: str, version_id: str) -> str:
        """Where a version answers before it takes traffic: its workers.dev preview URL."""
        return self._workers_url(f"{version_id[:8]}-{project}")

    def preview_headers(self, project: str, deployment_id: str) -> dict[str, str]:
        """Headers a request to a staged version needs besides its URL: none on workers.dev."""
        return {}

    def delete_deployment(self, project: str, deployment_id: str) -> None:
        """Nothing to do: the API has no call that deletes a version (only list, get and upload), and a
        version without traffic costs nothing. ``destroy`` removes them all with the script."""

    def destroy(self, project: str) -> None:
        with contextlib.suppress(ProviderNotFound):
            self.http.request("DELETE", self._script(project), params={"force": "true"})

    def add_domain(self, project: str, domain: str) -> DomainStatus:
        """Attach a Workers Custom Domain. Its zone must be on this account: Cloudflare then creates the
        DNS record and certificate itself, so there is nothing for the owner to add."""
        zone = self._zone_for(domain)
        result = self._result(
            "PUT",
            f"/accounts/{self.account_id}/workers/domains",
            json={"hostname": domain, "service": project, "zone_id": zone["id"], "environment": "production"},
        )
        return DomainStatus(name=str(result["hostname"]), status="active")

    def domain_status(self, project: str, domain: str) -> DomainStatus:
        """A Workers Custom Domain serves as soon as it is attached (Cloudflare makes its record and certificate)."""
        found = self._custom_domain(domain)
        if found is None or found.get("service") != project:
            raise ProviderNotFound("cloudflare", f"{domain} is not a Custom Domain of {project}")
        return DomainStatus(name=domain, status="active")

    def remove_domain(self, project: str, domain: str) -> None:
        found = self._custom_domain(domain)
        if found is not None and found.get("service") == project:
            with contextlib.suppress(ProviderNotFound):
                self.http.request("DELETE", f"/accounts/{self.account_id}/workers/domains/{found['id']}")

    def _custom_domain(self, domain: str) -> dict[str, Any] | None:
        listed = self._result(
            "GET", f"/accounts/{self.account_id}/workers/domains", params={"hostname": domain}
        )
        return next((dict(d) for d in listed if d.get("hostname") == domain), None)

    # -- usage -------------------------------------------------------------------------------------
    def invocations(self, scripts: list[str], start: str, end: str) -> dict[str, dict[str, int | None]]:
        """Each script's invocations in ``[start, end)`` (ISO-8601 UTC) from the GraphQL Analytics API,
        grouped by script and status, one query per ``SCRIPTS_PER_QUERY`` scripts.

        Per script: requests, errors, subrequests and ``cpuTimeUs`` over every status but ``internalError``,
        which Cloudflare does not bill; a script without rows had no traffic (zeros); a sum whose rows lack
        a field is None (not measured)."""
        totals: dict[str, dict[str, int | None]] = {
            script: dict.fromkeys(("requests", "errors", "subrequests", "cpuTimeUs"), 0) for script in scripts
        }
        for first in range(0, len(scripts), SCRIPTS_PER_QUERY):
            chunk = scripts[first : first + SCRIPTS_PER_QUERY]
            for group in self._invocation_groups(chunk, start, end):
                dimensions = group.get("dimensions") or {}
                script = dimensions.get("scriptName")
                if script not in totals or dimensions.get("status") == "internalError":
                    continue
                for name, value in (group.get("sum") or {}).items():
                    if name in totals[script]:
                        before = totals[script][name]
                        totals[script][name] = (
                            None if before is None or value is None else before + int(value)
                        )
        return totals

    def _invocation_groups(self, scripts: list[str], start: str, end: str) -> list[dict[str, Any]]:
        variables = {"accountTag": self.account_id, "scripts": scripts, "start": start, "end": end}
        body = self.http.json(
            "POST", "/graphql", json={"query": INVOCATIONS_QUERY, "variables": variables}, idempotent=True
        )
        errors = body.get("errors") or []
        if errors:  # a 200 can carry errors (GraphQL); the data is then null
            message = self.http.clean("invocations: " + "; ".join(str(e.get("message")) for e in errors))
            if any(m in message for m in GRAPHQL_RATE_LIMITED):
                raise ProviderUnavailable("cloudflare", message)
            raise ProviderError("cloudflare", message)
        accounts = ((body.get("data") or {}).get("viewer") or {}).get("accounts") or []
        return [g for a in accounts for g in a.get("workersInvocationsAdaptive") or []]

    # -- helpers -----------------------------------------------------------------------------------
    def exists(self, project: str) -> bool:
        try:
            self.live_version(project)
        except ProviderNotFound:
            return False
        return True

    def live_version(self, project: str) -> str | None:
        """The version taking the most traffic in the latest deployment (the first listed)."""
        found = self._result("GET", f"{self._script(project)}/deployments").get("deployments") or []
        if not found:
            return None
        return str(max(found[0]["versions"], key=lambda v: v["percentage"])["version_id"])

    def _create(self, project: str, parts: list[Any]) -> Deployment:
        self.http.request("PUT", self._script(project), files=parts)
        self._enable_workers_dev(project)
        version = self.live_version(project)
        if version is None:
            raise ProviderError("cloudflare", f"{project} was uploaded but has no deployment")
        return Deployment("cloudflare", project, version, self.production_url(project))

    def _enable_workers_dev(self, project: str) -> None:
        # Every time, as wrangler does: a run that crashed after the upload still ends reachable.
        self.http.request(
            "POST",
            f"{self._script(project)}/subdomain",
            json={"enabled": True, "previews_enabled": True},
            idempotent=True,
        )

    def _workers_url(self, label: str) -> str:
        if self._subdomain is None:
            try:
                result = self._result("GET", f"/accounts/{self.account_id}/workers/subdomain")
            except ProviderNotFound as exc:
                raise ConfigError(
                    "this Cloudflare account has no workers.dev subdomain yet: choose one "
                    "on the dashboard's Workers page"
                ) from exc
            self._subdomain = str(result["subdomain"])
        base = self.http.base_url
        if base.scheme == "http":  # an emulator: *.workers.dev is not served here
            return f"http://{label}.{self._subdomain}.workers.localhost:{base.port}"
        return f"https://{label}.{self._subdomain}.workers.dev"

    def _zone_for(self, domain: str) -> dict[str, Any]:
        """The zone holding ``domain``: try it and each parent with two labels or more, longest first."""
        labels = domain.lower().rstrip(".").split(".")
        for start in range(len(labels) - 1):
            name = ".".join(labels[start:])
            zones = self._result("GET", "/zones", params={"name": name, "account.id": self.account_id})
            if zones:
                zone: dict[str, Any] = zones[0]
                return zone
        raise InputError(
            f"no zone on this Cloudflare account holds {domain}: add its zone to Cloudflare "
            "first (Workers Custom Domains need it)"
        )

    # -- assets ------------------------------------------------------------------------------------
    def sync_assets(self, project: str, files: list[assets.Asset]) -> str | None:
        """Upload what Cloudflare lacks; return the completion JWT (None when there are no assets).

        A rejected or expired session JWT starts a new session: it lists only what is still missing."""
        if not files:
            return None
        manifest = {a.key: {"hash": a.hash, "size": a.size} for a in files}
        by_hash = {a.hash: a for a in files}
        uploaded, sent = 0, 0
        for attempt in range(3):
            session = self._result(
                "POST",
                f"{self._script(project)}/assets-upload-session",
                json={"manifest": manifest},
                idempotent=True,
            )
            token = str(session["jwt"])
            self.http.add_secret(token)
            buckets = [[by_hash[h] for h in bucket] for bucket in session.get("buckets") or [] if bucket]
            if not buckets:
                self.upload_stats[project] = {"files": len(files), "uploaded": uploaded, "bytes": sent}
                return token  # nothing missing: the session JWT is the completion token
            try:
                with ThreadPoolExecutor(
                    assets.BULK_UPLOAD_CONCURRENCY, thread_name_prefix="cfw-upload"
                ) as pool:
                    answers = list(pool.map(self._upload_bucket, [token] * len(buckets), buckets))
            except ProviderError as exc:
                if exc.status not in (401, 403) or attempt == 2:
                    raise
                log.info("asset upload JWT rejected (expired?); starting a new upload session")
                continue
            uploaded += sum(len(b) for b in buckets)
            sent += sum(a.size for b in buckets for a in b)
            self.upload_stats[project] = {"files": len(files), "uploaded": uploaded, "bytes": sent}
            completion = next((a for a in answers if a), None)
            if completion is None:
                raise ProviderError(
                    "cloudflare", f"asset upload for {project} ended without a completion token"
                )
            self.http.add_secret(completion)
            return completion
        raise AssertionError("unreachable")

    def _upload_bucket(self, token: str, bucket: list[assets.Asset]) -> str | None:
        if _expired(token):
            raise ProviderError("cloudflare", "asset upload JWT expired", status=401)
        parts = [(a.hash, (a.hash, base64.b64encode(a.path.read_bytes()), a.content_type)) for a in bucket]
        body = self.http.json(
            "POST",
            f"/accounts/{self.account_id}/workers/assets/upload",
            params={"base64": "true"},
            files=parts,
            headers={"Authorization": f"Bearer {token}"},
            idempotent=True,
        )
        completion = (body.get("result") or {}).get("jwt")
        return str(completion) if completion else None


def _expired(token: str, leeway: float = 10.0) -> bool:
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return False  # not ours to judge: the server says
    return exp is not None and float(exp) - leeway <= time.time()
