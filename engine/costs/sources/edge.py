"""The edge host's apps: cumulative requests and bytes turned into hourly deltas, and each app server's CPU
time and memory per hour."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from engine.costs.usage import CounterDeltas, CounterState, Reading, hour_floor


class Traffic(Protocol):
    """What ``engine.edge`` reports per app: cumulative since the counters started."""

    @property
    def requests(self) -> int: ...

    @property
    def bytes_out(self) -> int: ...


class EdgeTrafficSource:
    """Reads ``usage_counters()`` (cumulative, keyed by app name) and emits per-hour deltas.

    ``app_id_for`` maps the edge's key to the app id (None: an app the engine no longer knows; skipped).
    """

    name = "edge"

    def __init__(
        self,
        counters: Callable[[], Mapping[str, Traffic]],
        *,
        app_id_for: Callable[[str], str | None] = lambda key: key,
        provider: str = "local",
        state: CounterState | None = None,
    ) -> None:
        self.counters = counters
        self.app_id_for = app_id_for
        self.provider = provider
        self.deltas = CounterDeltas(self.name, state)

    def collect(self, hour_start: datetime) -> list[Reading]:
        readings = []
        for key, traffic in sorted(self.counters().items()):
            app_id = self.app_id_for(key)
            if app_id is None:
                continue
            closed, requests = self.deltas.delta(app_id, "requests", traffic.requests, hour_start)
            if not closed:
                continue
            _, bytes_out = self.deltas.delta(app_id, "bandwidth_bytes", traffic.bytes_out, hour_start)
            readings.append(
                Reading(
                    app_id=app_id,
                    provider=self.provider,
                    source=self.name,
                    hour_start=hour_start,
                    metrics={"requests": requests, "bandwidth_bytes": bytes_out},
                )
            )
        return readings


class HourlyResources(Protocol):
    """What ``engine.edge`` reports per app for one UTC hour (``engine.edge.usage.HourUse``)."""

    @property
    def cpu_ms(self) -> int: ...

    @property
    def memory_peak_bytes(self) -> int: ...

    @property
    def memory_avg_bytes(self) -> int: ...


class EdgeResourceSource:
    """Each app server's CPU time and memory (peak and hourly average) from the edge host's hourly buckets.

    An hour is read only once it has ended, so what the ledger keeps (its key is source, app and hour) is
    the whole hour: collecting it again adds nothing, and an hour still running is never frozen half-full.
    """

    name = "edge-resources"

    def __init__(
        self,
        hours: Callable[[str], Mapping[str, HourlyResources]],
        *,
        app_id_for: Callable[[str], str | None] = lambda key: key,
        provider: str = "local",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.hours = hours
        self.app_id_for = app_id_for
        self.provider = provider
        self.now = now

    def collect(self, hour_start: datetime) -> list[Reading]:
        if hour_floor(self.now()) <= hour_floor(hour_start):
            return []  # the hour has not ended
        readings = []
        for key, use in sorted(self.hours(hour_floor(hour_start).isoformat()).items()):
            app_id = self.app_id_for(key)
            if app_id is None:
                continue
            readings.append(
                Reading(
                    app_id=app_id,
                    provider=self.provider,
                    source=self.name,
                    hour_start=hour_start,
                    metrics={
                        "cpu_ms": use.cpu_ms,
                        "memory_peak_bytes": use.memory_peak_bytes,
                        "memory_avg_bytes": use.memory_avg_bytes,
                    },
                )
            )
        return readings
