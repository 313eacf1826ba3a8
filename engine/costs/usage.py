"""Usage sources: anything that can say how much each app used in one hour.

A ``UsageSource`` returns ``Reading``s for an hour; the metering pipeline writes them to the ledger. Local
sources live in ``engine.costs.sources``; cloud sources (Turso usage, Neon consumption history, Cloudflare
analytics) plug in through ``register_usage_source``: a factory that receives the store and the settings
and returns the sources it can build (none when its credentials are not configured).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from engine.errors import InputError

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.store import Store

# The ledger's metric columns. A reading may carry any subset; a metric it carries as None was not measured.
METRICS = (
    "db_rows_read",
    "db_rows_written",
    "db_storage_bytes",
    "requests",
    "bandwidth_bytes",
    "compute_ms",
    "cpu_ms",  # an app server's CPU time on this machine (compute_ms is what a host bills)
    "memory_peak_bytes",
    "memory_avg_bytes",  # averaged over the whole hour, 0 while the server is stopped
    "build_ms",
    "builds_android",
    "builds_ios",
    "build_minutes",
    "fee_cents",  # a fixed fee as charged (store registration), in cents
)
GAUGES = frozenset({"db_storage_bytes", "memory_peak_bytes", "memory_avg_bytes"})
COUNTERS = frozenset(METRICS) - GAUGES


def hour_floor(moment: datetime) -> datetime:
    """The start of the UTC hour containing ``moment``, as a naive UTC datetime (the ledger's form)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(minute=0, second=0, microsecond=0)


def previous_hour(now: datetime | None = None) -> datetime:
    """The last complete hour: what an hourly job collects."""
    return hour_floor(now or datetime.now(UTC)) - timedelta(hours=1)


@dataclass(frozen=True)
class Reading:
    app_id: str
    provider: str
    source: str
    hour_start: datetime
    metrics: Mapping[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.metrics) - set(METRICS)
        if unknown:
            raise InputError(
                f"reading from {self.source}: unknown metric(s) {sorted(unknown)}; known: {METRICS}"
            )
        for name, value in self.metrics.items():
            if value is not None and value < 0:
                raise InputError(f"reading from {self.source}: {name} is negative ({value})")
        if hour_floor(self.hour_start) != self.hour_start.replace(tzinfo=None):
            raise InputError(f"reading from {self.source}: hour_start {self.hour_start} is not on the hour")

    @property
    def idempotency_key(self) -> str:
        return f"{self.source}|{self.app_id}|{hour_floor(self.hour_start).isoformat()}"


@runtime_checkable
class UsageSource(Protocol):
    name: str

    def collect(self, hour_start: datetime) -> list[Reading]:
        """Readings for the hour starting at ``hour_start`` (UTC)."""
        ...


SourceFactory = Callable[["Store", "Settings"], Iterable[UsageSource]]
_factories: list[SourceFactory] = []


def register_usage_source(factory: SourceFactory) -> SourceFactory:
    """Register a factory of usage sources (the seam for cloud usage clients). Usable as a decorator."""
    _factories.append(factory)
    return factory


def registered_sources(store: Store, settings: Settings) -> list[UsageSource]:
    found: list[UsageSource] = []
    for factory in _factories:
        found.extend(factory(store, settings))
    return found


class CounterState(Protocol):
    def get(self, source: str, subject: str, metric: str) -> tuple[int, datetime] | None: ...

    def put(self, source: str, subject: str, metric: str, value: int, hour_start: datetime) -> None: ...


class MemoryCounterState:
    def __init__(self) -> None:
        self._values: dict[tuple[str, str, str], tuple[int, datetime]] = {}

    def get(self, source: str, subject: str, metric: str) -> tuple[int, datetime] | None:
        return self._values.get((source, subject, metric))

    def put(self, source: str, subject: str, metric: str, value: int, hour_start: datetime) -> None:
        self._values[(source, subject, metric)] = (value, hour_start)


class StoreCounterState:
    """Counter state kept in ``usage_counter_state`` so an engine restart does not lose or double an hour."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, source: str, subject: str, metric: str) -> tuple[int, datetime] | None:
        row = self.store.fetchone(
            "SELECT value, hour_start FROM usage_counter_state WHERE source = ? AND subject = ? AND metric = ?",
            [source, subject, metric],
        )
        return (int(row["value"]), row["hour_start"]) if row else None

    def put(self, source: str, subject: str, metric: str, value: int, hour_start: datetime) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO usage_counter_state (source, subject, metric, value, hour_start)"
            " VALUES (?, ?, ?, ?, ?)",
            [source, subject, metric, value, hour_start],
        )


class CounterDeltas:
    """Turns cumulative counters into per-hour deltas.

    - The first value seen for a counter has no earlier value to subtract: that hour is "not measured" (None).
    - A value lower than the last one means the counter restarted (process restart, stats reset): the delta is
      the new value, counted from zero.
    - Asking again for an hour already closed returns nothing (``None`` from ``delta``), so re-collecting an
      hour never moves the baseline: the traffic keeps counting toward the next hour instead of being lost.
    """

    def __init__(self, source: str, state: CounterState | None = None) -> None:
        self.source = source
        self.state: CounterState = state or MemoryCounterState()

    def already_closed(self, subject: str, metric: str, hour_start: datetime) -> bool:
        last = self.state.get(self.source, subject, metric)
        return last is not None and last[1] >= hour_start

    def delta(self, subject: str, metric: str, value: int, hour_start: datetime) -> tuple[bool, int | None]:
        """(closed now?, delta). ``closed now`` is False when the hour was already closed earlier."""
        last = self.state.get(self.source, subject, metric)
        if last is not None and last[1] >= hour_start:
            return False, None
        self.state.put(self.source, subject, metric, value, hour_start)
        if last is None:
            return True, None
        previous = last[0]
        return True, value - previous if value >= previous else value
