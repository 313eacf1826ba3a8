"""Conservation: for every provider and month the allocated cents add up exactly to the provider's bill."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.costs.model import IDLE, AppUsage, cost_provider
from engine.costs.money import largest_remainder
from engine.costs.sheets import Meter, Plan, load_catalog

CATALOG = load_catalog()

usage_values = st.one_of(st.none(), st.integers(min_value=0, max_value=10**13))
app_usage = st.fixed_dictionaries(
    {
        "db_rows_read": usage_values,
        "db_rows_written": usage_values,
        "db_storage_bytes_peak": usage_values,
        "db_storage_bytes_avg": usage_values,
        "db_active_hours": st.one_of(st.none(), st.integers(min_value=0, max_value=744)),
        "requests": usage_values,
        "bandwidth_bytes": usage_values,
    }
)
methods = st.sampled_from(["even", "usage", "metric:requests", "metric:db_rows_written"])
sheet_plans = [
    (provider, plan)
    for provider, sheet in CATALOG.sheets.items()
    if sheet.kind not in ("baseline", "payments")
    for version in sheet.versions
    for plan in version.plans.values()
]


@settings(max_examples=300, deadline=None)
@given(
    plan_index=st.integers(min_value=0, max_value=len(sheet_plans) - 1),
    usages=st.lists(app_usage, max_size=40),
    method=methods,
)
def test_allocated_cents_add_up_to_the_bill_for_every_sheet(
    plan_index: int, usages: list[dict[str, int | None]], method: str
) -> None:
    provider, plan = sheet_plans[plan_index]
    apps = [AppUsage(f"app-{i:03d}", metrics) for i, metrics in enumerate(usages)]
    bill = cost_provider(provider, plan, apps, method=method)
    assert sum(line.cents for line in bill.lines) == bill.bill_cents
    assert all(line.cents > 0 for line in bill.lines)
    assert bill.bill_cents >= round(plan.base_fee * 100)


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=10**9),
    weights=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=60).filter(any),
)
def test_largest_remainder_is_exact_and_within_a_cent_of_each_share(total: int, weights: list[int]) -> None:
    keyed = [(i, w) for i, w in enumerate(weights)]
    parts = largest_remainder(total, keyed)
    assert sum(parts.values()) == total
    weight_sum = sum(weights)
    for i, w in keyed:
        exact = Decimal(total) * w / weight_sum
        assert abs(parts[i] - exact) < 1


def test_unused_included_quota_is_an_idle_line() -> None:
    plan = Plan(
        name="p",
        base_fee=Decimal("10.00"),
        base_fee_source="test",
        primary_metric="requests",
        meters=[Meter(metric="requests", included=1000, price=Decimal("1"), per=1000, source="test")],
    )
    bill = cost_provider("x", plan, [AppUsage("a", {"requests": 300}), AppUsage("b", {"requests": 100})])
    by_app = bill.by_app()
    assert by_app == {"a": 300, "b": 100, IDLE: 600}  # 40% of the quota used: 60% of the fee is idle


def test_overage_is_shared_by_use_and_even_method_ignores_usage() -> None:
    plan = Plan(
        name="p",
        base_fee=Decimal("5.00"),
        base_fee_source="test",
        primary_metric="requests",
        meters=[
            Meter(metric="requests", included=1_000_000, price=Decimal("0.30"), per=1_000_000, source="t")
        ],
    )
    usages = [AppUsage("a", {"requests": 3_000_000}), AppUsage("b", {"requests": 1_000_000})]
    bill = cost_provider("cf", plan, usages, method="even")
    assert bill.components == {"base_fee": 500, "requests": 90}  # 3M over the quota at $0.30/M
    lines = {(line.app_id, line.component): line.cents for line in bill.lines}
    assert lines[("a", "base_fee")] == lines[("b", "base_fee")] == 250
    assert (lines[("a", "requests")], lines[("b", "requests")]) == (
        68,
        22,
    )  # 67.5 and 22.5: largest remainder


def test_no_apps_on_a_plan_makes_the_whole_fee_idle() -> None:
    _, plan = CATALOG.plan_for("turso", CATALOG.sheet("turso").versions[-1].effective_from)
    bill = cost_provider("turso", plan, [])
    assert bill.by_app() == {IDLE: 499}


def test_not_measured_usage_is_not_charged_and_neon_minimum_applies() -> None:
    version = CATALOG.sheet("neon").versions[-1]
    bill = cost_provider(
        "neon", version.plan("launch"), [AppUsage("a", {"db_rows_read": None, "db_active_hours": 4})]
    )
    # 4 active hours x 0.25 CU x $0.14 = $0.14; the $5 minimum tops it up, all carried by the one app.
    assert bill.components["db_active_hours"] == 14
    assert bill.bill_cents == 500
    assert bill.by_app() == {"a": 500}
