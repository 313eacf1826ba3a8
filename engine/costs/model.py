"""The pure cost model: a provider's monthly bill from usage, allocated to apps in integer cents.

Included quotas are pooled across the account, as providers meter them. Each metered line is charged on
the pooled overage and shared in proportion to each app's use of that metric. The base fee (and a plan
minimum's top-up) is shared by the operator's method:

- ``even``: equally among the provider's apps;
- ``usage``: by the plan's primary metric;
- ``metric:<name>``: by a named metric.

When the chosen metric has an included quota the apps did not use up, the unused share is an ``idle``
line (``app_id`` None): what the plan costs whether or not anyone uses it. Every split is largest-remainder
rounded, so for every provider and month the lines add up exactly to the bill.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from engine.costs.money import largest_remainder, to_cents
from engine.costs.sheets import Plan, RailwayBaseline
from engine.errors import InputError

IDLE = None  # the app_id of the idle line
BASE = "base_fee"
MINIMUM = "minimum_top_up"
GB = Decimal(1_000_000_000)


@dataclass(frozen=True)
class AppUsage:
    """One app's usage of one provider in one month. A metric that is None was not measured."""

    app_id: str
    metrics: Mapping[str, int | None] = field(default_factory=dict)

    def value(self, metric: str) -> int:
        return self.metrics.get(metric) or 0


@dataclass(frozen=True)
class CostLine:
    provider: str
    app_id: str | None  # None: the idle line
    component: str  # base_fee | minimum_top_up | a meter's metric
    cents: int


@dataclass(frozen=True)
class ProviderBill:
    provider: str
    plan: str
    effective_from: str
    method: str
    bill_cents: int
    components: dict[str, int]
    lines: tuple[CostLine, ...]
    usage_totals: dict[str, int]

    def by_app(self) -> dict[str | None, int]:
        totals: dict[str | None, int] = {}
        for line in self.lines:
            totals[line.app_id] = totals.get(line.app_id, 0) + line.cents
        return totals


def parse_method(method: str) -> tuple[str, str | None]:
    if method in ("even", "usage"):
        return method, None
    if method.startswith("metric:") and len(method) > len("metric:"):
        return "metric", method.removeprefix("metric:")
    raise InputError(f"allocation method {method!r} is not one of: even, usage, metric:<name>")


def meter_charge_cents(plan: Plan, metric: str, total: int) -> int:
    meter = plan.meter(metric)
    if meter is None:
        return 0
    billable = max(Decimal(0), Decimal(total) * meter.scale - meter.included)
    return to_cents(billable * meter.price / meter.per)


def _fee_weights(plan: Plan, usages: Sequence[AppUsage], method: str) -> list[tuple[str | None, int]]:
    """Weights for sharing a fixed fee; the idle line gets the unused part of the metric's included quota."""
    kind, named = parse_method(method)
    metric = named if kind == "metric" else plan.primary_metric if kind == "usage" else None
    if metric is not None:
        weights: list[tuple[str | None, int]] = [(u.app_id, u.value(metric)) for u in usages]
        used = sum(w for _, w in weights)
        meter = plan.meter(metric)
        included = int(meter.included / meter.scale) if meter is not None else 0
        if included > used:
            return [*weights, (IDLE, included - used)]
        if used > 0:
            return weights
    # Even split (or a metric nobody used and no quota exists for): every app carries the same share.
    return [(u.app_id, 1) for u in usages] or [(IDLE, 1)]


def cost_provider(
    provider: str,
    plan: Plan,
    usages: Sequence[AppUsage],
    *,
    method: str = "usage",
    effective_from: str = "",
) -> ProviderBill:
    """The month's bill of one provider and its exact split across ``usages`` (apps on that provider)."""
    app_ids = [u.app_id for u in usages]
    if len(set(app_ids)) != len(app_ids):
        raise ValueError(f"{provider}: an app appears twice in the usage passed to cost_provider")
    usages = sorted(usages, key=lambda u: u.app_id)
    totals = {m.metric: sum(u.value(m.metric) for u in usages) for m in plan.meters}
    components: dict[str, int] = {BASE: to_cents(plan.base_fee)}
    for meter in plan.meters:
        components[meter.metric] = meter_charge_cents(plan, meter.metric, totals[meter.metric])
    if plan.minimum_fee is not None:
        shortfall = to_cents(plan.minimum_fee) - sum(components.values())
        components[MINIMUM] = max(0, shortfall)
    lines: list[CostLine] = []
    for component, cents in components.items():
        if cents == 0:
            continue
        if component in (BASE, MINIMUM):
            weights = _fee_weights(plan, usages, method)
        else:
            weights = [(u.app_id, u.value(component)) for u in usages]
        shares = largest_remainder(cents, weights)
        lines.extend(CostLine(provider, app, component, part) for app, part in shares.items() if part)
    return ProviderBill(
        provider=provider,
        plan=plan.name,
        effective_from=effective_from,
        method=method,
        bill_cents=sum(components.values()),
        components=components,
        lines=tuple(lines),
        usage_totals=totals,
    )


def railway_baseline_cents(
    baseline: RailwayBaseline, bandwidth_bytes: int | None, storage_bytes: int | None
) -> int:
    """What one app would cost as an always-on Railway service of the baseline size, in cents."""
    dollars = (
        baseline.vcpu_per_app * baseline.vcpu_month + baseline.memory_gb_per_app * baseline.memory_gb_month
    )
    dollars += Decimal(bandwidth_bytes or 0) / GB * baseline.egress_per_gb
    dollars += Decimal(storage_bytes or 0) / GB * baseline.volume_gb_month
    return to_cents(dollars)


MS_PER_MINUTE = Decimal(60_000)


def railway_measured_cents(
    baseline: RailwayBaseline,
    cpu_ms: int,
    memory_byte_hours: int,
    bandwidth_bytes: int | None,
    storage_bytes: int | None,
) -> int:
    """What one app would cost on Railway at what it measured: CPU time as vCPU-minutes, memory averaged
    per hour as GB-minutes, plus egress and a volume the size of its database, in cents. A stopped server
    counts nothing, as a Railway service with app sleeping bills nothing while it sleeps."""
    if baseline.vcpu_minute is None or baseline.memory_gb_minute is None:
        raise InputError("the Railway sheet has no per-minute vCPU and memory prices for a measured baseline")
    dollars = Decimal(cpu_ms) / MS_PER_MINUTE * baseline.vcpu_minute
    dollars += Decimal(memory_byte_hours) / GB * 60 * baseline.memory_gb_minute
    dollars += Decimal(bandwidth_bytes or 0) / GB * baseline.egress_per_gb
    dollars += Decimal(storage_bytes or 0) / GB * baseline.volume_gb_month
    return to_cents(dollars)


def payment_fee_cents(plan: Plan, amount_cents: int) -> int:
    """Stripe's fee for collecting ``amount_cents`` in one card charge with Billing (0 for a zero charge)."""
    if amount_cents <= 0:
        return 0
    amount = Decimal(amount_cents) / 100
    fee = amount * (plan.card_percent or 0) / 100 + (plan.card_fixed or 0)
    fee += amount * (plan.billing_percent or 0) / 100
    return to_cents(fee)
