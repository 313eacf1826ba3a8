"""Traffic counters for metering: cumulative requests and bytes sent per app, and the recorded server
starts (cold starts included). Kept in memory, flushed to the workspace every few seconds and at stop."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from engine.edge.jsonfile import read_json, write_json

KEEP_STARTS = 50


@dataclass(frozen=True)
class AppTraffic:
    requests: int = 0
    bytes_out: int = 0


@dataclass(frozen=True)
class ServerStart:
    """One start of an app's server. kind: 'request' (a cold start: a request found it stopped),
    'promote' (warmed before going live) or 'restart' (after a crash)."""

    deployment_id: str
    kind: str
    seconds: float  # spawn -> listening on its port
    at: float  # epoch seconds
    # for a cold start: from the request's arrival to the server's first response headers (what the
    # user waited; a Next server also loads the route's code on its first request)
    first_response_seconds: float | None = None


class UsageBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # flushes write in the order they snapshot
        data: dict[str, Any] = read_json(path, {})
        self._traffic = {app: AppTraffic(**v["traffic"]) for app, v in data.items()}
        self._starts = {app: [ServerStart(**s) for s in v.get("starts", [])] for app, v in data.items()}
        self._dirty = False

    def count(self, app: str, requests: int, bytes_out: int) -> None:
        with self._lock:
            old = self._traffic.get(app, AppTraffic())
            self._traffic[app] = AppTraffic(old.requests + requests, old.bytes_out + bytes_out)
            self._dirty = True

    def record_start(self, app: str, start: ServerStart) -> None:
        with self._lock:
            self._starts.setdefault(app, []).append(start)
            del self._starts[app][:-KEEP_STARTS]
            self._dirty = True

    def note_first_response(self, app: str, deployment_id: str, seconds: float) -> None:
        """Attach the user-visible wait to the cold start that a request just caused."""
        with self._lock:
            starts = self._starts.get(app)
            if (
                starts
                and starts[-1].kind == "request"
                and starts[-1].deployment_id == deployment_id
                and starts[-1].first_response_seconds is None
            ):
                starts[-1] = replace(starts[-1], first_response_seconds=round(seconds, 4))
                self._dirty = True

    def traffic(self) -> dict[str, AppTraffic]:
        with self._lock:
            return dict(self._traffic)

    def starts(self, app: str) -> list[ServerStart]:
        with self._lock:
            return list(self._starts.get(app, []))

    def forget(self, app: str) -> AppTraffic:
        with self._lock:
            self._starts.pop(app, None)
            self._dirty = True
            return self._traffic.pop(app, AppTraffic())

    def flush(self, force: bool = False) -> None:
        with self._write_lock:
            self._flush(force)

    def _flush(self, force: bool) -> None:
        with self._lock:
            if not (self._dirty or force):
                return
            apps = set(self._traffic) | set(self._starts)
            data = {
                app: {
                    "traffic": asdict(self._traffic.get(app, AppTraffic())),
                    "starts": [asdict(s) for s in self._starts.get(app, [])],
                }
                for app in apps
            }
            self._dirty = False
        write_json(self.path, data)
