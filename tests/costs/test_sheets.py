"""Price sheets: every figure has a source, versions are immutable once recorded, bad files say what to fix."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.costs.closing import close_month
from engine.costs.sheets import PRICES_DIR, list_versions, load_catalog, record_versions
from engine.errors import Conflict, InputError, NotFound
from engine.store import Store
from tests.costs.conftest import add_app


def test_every_meter_and_fee_names_its_source() -> None:
    catalog = load_catalog()
    assert {
        "turso",
        "neon",
        "cloudflare",
        "vercel",
        "supabase",
        "railway",
        "stripe",
        "eas",
        "apple",
        "google",
    } <= set(catalog.sheets)
    for sheet in catalog.sheets.values():
        for version in sheet.versions:
            assert version.source.startswith("https://")
            for plan in version.plans.values():
                assert plan.base_fee_source.startswith("https://")
                assert all(meter.source.startswith("https://") for meter in plan.meters)


def test_an_edited_past_version_is_refused_and_a_new_version_is_recorded(
    store: Store, tmp_path: Path
) -> None:
    prices = tmp_path / "prices"
    shutil.copytree(PRICES_DIR, prices)
    assert len(record_versions(store, load_catalog(prices))) > 0
    turso = prices / "turso.toml"
    original = turso.read_text()
    edited = original.replace('base_fee = "4.99"', 'base_fee = "5.99"')
    turso.write_text(edited)
    corrected = record_versions(store, load_catalog(prices))  # no closed month used it yet: a correction
    assert corrected == [{"provider": "turso", "effective_from": date(2026, 6, 1)}]
    turso.write_text(original)
    record_versions(store, load_catalog(prices))
    add_app(store, "shop")
    close_month(store, "2026-10", catalog=load_catalog(prices), now=datetime(2026, 11, 1))
    turso.write_text(edited)
    with pytest.raises(
        Conflict, match="closed month 2026-10 was costed with it; a price change is a new version"
    ):
        record_versions(store, load_catalog(prices))
    turso.write_text(
        original
        + """
[[versions]]
effective_from = 2027-01-01
source = "https://turso.tech/pricing"
[versions.plans.free]
base_fee = "0.00"
base_fee_source = "https://turso.tech/pricing"
[versions.plans.developer]
base_fee = "5.99"
base_fee_source = "https://turso.tech/pricing"
[versions.plans.scaler]
base_fee = "24.92"
base_fee_source = "https://turso.tech/pricing"
"""
    )
    catalog = load_catalog(prices)
    assert record_versions(store, catalog) == [{"provider": "turso", "effective_from": date(2027, 1, 1)}]
    assert catalog.plan_for("turso", date(2026, 12, 1))[1].base_fee == Decimal(
        "4.99"
    )  # December keeps its sheet
    assert catalog.plan_for("turso", date(2027, 1, 1))[1].base_fee == Decimal("5.99")
    assert [v["effective_from"] for v in list_versions(store) if v["provider"] == "turso"][-1] == date(
        2027, 1, 1
    )


def test_bad_sheets_say_what_to_fix(tmp_path: Path) -> None:
    (tmp_path / "turso.toml").write_text('provider = "neon"\ndefault_plan = "x"\n')
    with pytest.raises(InputError, match="must be 'turso'"):
        load_catalog(tmp_path)
    (tmp_path / "turso.toml").write_text("provider = [")
    with pytest.raises(InputError, match="not valid TOML"):
        load_catalog(tmp_path)
    with pytest.raises(NotFound, match="earliest version is effective"):
        load_catalog().sheet("turso").version_for(date(2020, 1, 1))
