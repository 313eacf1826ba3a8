"""Edge-host traffic: cumulative requests and bytes per app, turned into hourly deltas."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from engine.costs.usage import CounterDeltas, CounterState, Reading


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
