"""Usage of the edge host's apps for metering: cumulative requests and bytes sent per app, the recorded
server starts (cold starts included), and each app server's CPU time and memory per hour. Kept in memory,
flushed to the workspace every few seconds and at stop.

CPU and memory come from ``read_server``, the one seam between metering and how a server's resources are
read: today the process tree (psutil); the per-server cgroup (``cpu.stat``, ``memory.current``) replaces it
without touching anything else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from engine.edge.jsonfile import read_json, write_json

KEEP_STARTS = 50
SAMPLE_SECONDS = 5.0  # memory is sampled this often; CPU time is cumulative, so the interval loses none
MAX_SAMPLE_GAP = 3 * SAMPLE_SECONDS  # a stalled sampler does not credit a long gap to one sample
KEEP_HOURS = 72  # hourly buckets kept for metering to collect (it collects each hour once, late at worst)


@dataclass(frozen=True)
class ServerResources:
    """One reading of a server: CPU seconds used so far (user + system) and resident memory now."""

    cpu_seconds: float
    memory_bytes: int


def process_tree_resources(pid: int) -> ServerResources | None:
    """A server's resources from its process tree: the leader's own and reaped children's CPU time, plus
    every live descendant's CPU time and resident memory. None: the process is gone."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    cpu, memory, found = 0.0, 0, False
    for index, process in enumerate(processes):
        try:
            with process.oneshot():
                times = process.cpu_times()
                rss = process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        cpu += times.user + times.system
        if index == 0:  # children the leader already reaped are counted in its own record
            cpu += times.children_user + times.children_system
        memory += rss
        found = True
    return ServerResources(cpu, memory) if found else None


# The seam: how a running server's resources are read, given its pid.
read_server: Callable[[int], ServerResources | None] = process_tree_resources


def hour_key(moment: float) -> str:
    """The UTC hour containing an epoch time, as the ledger names hours (ISO, naive)."""
    start = datetime.fromtimestamp(moment, UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    return start.isoformat()


@dataclass
class HourUse:
    """One app's servers in one UTC hour: CPU milliseconds, the largest memory sample, and memory
    integrated over time (byte-seconds; divided by 3,600 it is the hour's average, counting 0 while stopped)."""

    cpu_ms: int = 0
    memory_peak_bytes: int = 0
    memory_byte_seconds: int = 0

    @property
    def memory_avg_bytes(self) -> int:
        return round(self.memory_byte_seconds / 3600)


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
        self._hours = {
            app: {hour: HourUse(**use) for hour, use in v.get("hours", {}).items()} for app, v in data.items()
        }
        self._cpu_seen: dict[int, float] = {}  # pid -> CPU seconds at its last sample
        self._sampled_at: float | None = None
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

    def sample_resources(
        self, servers: Mapping[str, Iterable[int]], *, now: float | None = None, force: bool = False
    ) -> bool:
        """Read every running server (app -> pids) and add to its app's current hour: CPU used since the
        last sample and memory for the time since then. At most every ``SAMPLE_SECONDS`` unless ``force``.
        Returns whether it sampled."""
        now = time.time() if now is None else now
        if not force and self._sampled_at is not None and now - self._sampled_at < SAMPLE_SECONDS:
            return False
        gap = min(now - self._sampled_at, MAX_SAMPLE_GAP) if self._sampled_at is not None else 0.0
        readings: dict[str, list[tuple[int, ServerResources]]] = {}
        for app, pids in servers.items():
            for pid in pids:
                reading = read_server(pid)
                if reading is not None:
                    readings.setdefault(app, []).append((pid, reading))
        hour = hour_key(now)
        with self._lock:
            seen: dict[int, float] = {}
            for app, found in readings.items():
                use = self._hours.setdefault(app, {}).setdefault(hour, HourUse())
                memory = 0
                for pid, resources in found:
                    before = self._cpu_seen.get(pid)
                    # A server first seen now started since the last sample: all its CPU time is new.
                    used = resources.cpu_seconds - (before if before is not None else 0.0)
                    use.cpu_ms += max(0, round(used * 1000))
                    seen[pid] = resources.cpu_seconds
                    memory += resources.memory_bytes
                use.memory_peak_bytes = max(use.memory_peak_bytes, memory)
                use.memory_byte_seconds += round(memory * gap)
            self._cpu_seen = seen
            self._sampled_at = now
            oldest = hour_key(now - KEEP_HOURS * 3600)
            for hours in self._hours.values():
                for key in [k for k in hours if k < oldest]:
                    del hours[key]
            self._dirty = True
        return True

    def resource_hour(self, hour_start: str) -> dict[str, HourUse]:
        """Each app's use in the hour starting at ``hour_start`` (ISO, naive UTC), for metering."""
        with self._lock:
            return {
                app: replace(hours[hour_start]) for app, hours in self._hours.items() if hour_start in hours
            }

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
            apps = set(self._traffic) | set(self._starts) | set(self._hours)
            data = {
                app: {
                    "traffic": asdict(self._traffic.get(app, AppTraffic())),
                    "starts": [asdict(s) for s in self._starts.get(app, [])],
                    "hours": {hour: asdict(use) for hour, use in self._hours.get(app, {}).items()},
                }
                for app in apps
            }
            self._dirty = False
        write_json(self.path, data)
