"""The routing table: each app's live deployment, whether it is suspended, and the custom domains that
point at it. Persisted in the workspace, so a restarted engine serves what was live before.

Readers take an immutable snapshot (one attribute read), so a request sees the table from before or
after a promote, never half of one. Another process (the CLI checking a domain while no engine runs)
may write the file; the edge host notices because the file was replaced.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.edge.jsonfile import read_json, write_json


@dataclass(frozen=True)
class AppRoute:
    live: str | None = None
    suspended: bool = False


@dataclass(frozen=True)
class Snapshot:
    apps: MappingProxyType[str, AppRoute] = field(default_factory=lambda: MappingProxyType({}))
    domains: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


class RouteTable:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._version: tuple[int, int] | None = None
        self.snapshot = Snapshot()
        self._load()

    # -- persistence ------------------------------------------------------------------------------

    def _file_version(self) -> tuple[int, int] | None:
        # every write renames a new file into place, so the inode changes even within one clock tick
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def _load(self) -> None:
        data: dict[str, Any] = read_json(self.path, {"apps": {}, "domains": {}})
        apps = {name: AppRoute(**route) for name, route in data.get("apps", {}).items()}
        self.snapshot = Snapshot(MappingProxyType(apps), MappingProxyType(dict(data.get("domains", {}))))
        self._version = self._file_version()

    def refresh(self) -> Snapshot:
        """The current table, re-read if another process changed the file."""
        if self._file_version() != self._version:
            with self._lock:
                self._load()
        return self.snapshot

    def _commit(self, apps: dict[str, AppRoute], domains: dict[str, str]) -> None:
        data = {
            "apps": {name: {"live": r.live, "suspended": r.suspended} for name, r in apps.items()},
            "domains": domains,
        }
        write_json(self.path, data)
        self.snapshot = Snapshot(MappingProxyType(apps), MappingProxyType(domains))
        self._version = self._file_version()

    # -- changes ----------------------------------------------------------------------------------

    def update_app(self, app: str, **changes: Any) -> AppRoute:
        with self._lock:
            self._load()
            apps = dict(self.snapshot.apps)
            route = replace(apps.get(app, AppRoute()), **changes)
            apps[app] = route
            self._commit(apps, dict(self.snapshot.domains))
            return route

    def drop_app(self, app: str) -> None:
        with self._lock:
            self._load()
            apps = dict(self.snapshot.apps)
            apps.pop(app, None)
            domains = {d: a for d, a in self.snapshot.domains.items() if a != app}
            self._commit(apps, domains)

    def route_domain(self, domain: str, app: str) -> None:
        with self._lock:
            self._load()
            self._commit(dict(self.snapshot.apps), {**self.snapshot.domains, domain: app})

    def unroute_domain(self, domain: str) -> None:
        with self._lock:
            self._load()
            domains = dict(self.snapshot.domains)
            domains.pop(domain, None)
            self._commit(dict(self.snapshot.apps), domains)
