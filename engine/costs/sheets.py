"""Price sheets: one TOML file per provider in ``data/prices``, each a list of dated versions.

A month is costed with the version in force on its first day: providers bill by calendar month and a price
change takes effect from a billing period's start. Every version is recorded in the store
(``price_sheet_versions``); once a closed month has been costed with a version, editing it instead of adding a
new one is refused, because that month's frozen figures depend on it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.config import PROJECT_ROOT
from engine.errors import Conflict, InputError, NotFound
from engine.store import Store

PRICES_DIR = PROJECT_ROOT / "data" / "prices"
PROVIDERS_FILE = "providers.toml"


class Meter(BaseModel):
    """A metered line: ``max(0, usage * scale - included) * price / per`` dollars."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    included: int = Field(default=0, ge=0)
    price: Decimal = Field(ge=0)
    per: int = Field(default=1, gt=0)
    scale: Decimal = Field(default=Decimal(1), gt=0)
    source: str
    note: str | None = None


class RailwayBaseline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vcpu_per_app: Decimal
    memory_gb_per_app: Decimal
    vcpu_month: Decimal
    memory_gb_month: Decimal
    egress_per_gb: Decimal
    volume_gb_month: Decimal
    # Usage prices for what a service actually uses, per minute (the measured baseline).
    vcpu_minute: Decimal | None = None
    memory_gb_minute: Decimal | None = None
    source: str
    unverified: list[str] = []


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    base_fee: Decimal = Field(ge=0)
    base_fee_source: str
    base_fee_note: str | None = None
    minimum_fee: Decimal | None = Field(default=None, ge=0)
    one_time_fee: Decimal | None = Field(default=None, ge=0)
    primary_metric: str | None = None
    limits: dict[str, Any] = {}
    meters: list[Meter] = []
    baseline: RailwayBaseline | None = None
    # Payment-processor fees (Stripe): percent of an amount plus a fixed fee per charge.
    card_percent: Decimal | None = None
    card_fixed: Decimal | None = None
    billing_percent: Decimal | None = None

    def meter(self, metric: str) -> Meter | None:
        return next((m for m in self.meters if m.metric == metric), None)


class SheetVersion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    effective_from: date
    observed: date | None = None
    source: str
    source_note: str | None = None
    differs_from_plan: str | None = None
    plans: dict[str, Plan]

    @property
    def content_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def plan(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            raise InputError(
                f"{self.provider} has no plan {name!r} in the sheet effective {self.effective_from}; "
                f"plans: {', '.join(sorted(self.plans))}"
            ) from None


@dataclass(frozen=True)
class PriceSheet:
    provider: str
    display_name: str
    kind: str
    default_plan: str
    versions: tuple[SheetVersion, ...]

    def version_for(self, month_start: date) -> SheetVersion:
        """The version in force on ``month_start``."""
        in_force = [v for v in self.versions if v.effective_from <= month_start]
        if not in_force:
            raise NotFound(
                f"no {self.provider} price sheet is in force on {month_start}: the earliest version is effective "
                f"{self.versions[0].effective_from}; add an earlier [[versions]] entry to data/prices/{self.provider}.toml"
            )
        return in_force[-1]


@dataclass(frozen=True)
class Catalog:
    """Every provider's sheet plus the account choices of ``providers.toml``."""

    sheets: dict[str, PriceSheet]
    equivalents: dict[str, str] = field(default_factory=dict)
    account: dict[str, str] = field(default_factory=dict)
    allocation: str = "usage"

    def sheet(self, provider: str) -> PriceSheet:
        try:
            return self.sheets[provider]
        except KeyError:
            raise NotFound(
                f"no price sheet for provider {provider!r}; sheets: {', '.join(sorted(self.sheets))}"
            ) from None

    def costed_as(self, provider: str | None) -> str | None:
        """The sheet a provider is costed with (local stand-ins map to the cloud service); None: no cost."""
        if provider is None:
            return None
        mapped = self.equivalents.get(provider, provider)
        return None if mapped == "none" else mapped

    def plan_for(
        self, provider: str, month_start: date, plan: str | None = None
    ) -> tuple[SheetVersion, Plan]:
        sheet = self.sheet(provider)
        version = sheet.version_for(month_start)
        return version, version.plan(plan or self.account.get(provider, sheet.default_plan))


def _load_sheet(path: Path) -> PriceSheet:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    provider = raw.get("provider")
    if provider != path.stem:
        raise InputError(f"{path}: `provider` must be {path.stem!r} (the file name), got {provider!r}")
    versions: list[SheetVersion] = []
    for entry in raw.get("versions", []):
        plans = {name: {"name": name, **body} for name, body in entry.get("plans", {}).items()}
        try:
            versions.append(SheetVersion(provider=provider, **{**entry, "plans": plans}))
        except ValidationError as exc:
            raise InputError(f"{path}: version {entry.get('effective_from')}: {exc}") from None
    if not versions:
        raise InputError(f"{path}: no [[versions]] entry")
    versions.sort(key=lambda v: v.effective_from)
    dates = [v.effective_from for v in versions]
    if len(set(dates)) != len(dates):
        raise InputError(f"{path}: two versions share an effective_from date")
    return PriceSheet(
        provider=provider,
        display_name=raw.get("display_name", provider),
        kind=raw.get("kind", "other"),
        default_plan=raw["default_plan"],
        versions=tuple(versions),
    )


def load_catalog(directory: Path = PRICES_DIR) -> Catalog:
    sheets = {}
    for path in sorted(directory.glob("*.toml")):
        if path.name != PROVIDERS_FILE:
            sheet = _load_sheet(path)
            sheets[sheet.provider] = sheet
    settings_path = directory / PROVIDERS_FILE
    extra = tomllib.loads(settings_path.read_text(encoding="utf-8")) if settings_path.exists() else {}
    catalog = Catalog(
        sheets=sheets,
        equivalents=dict(extra.get("equivalents", {})),
        account=dict(extra.get("account", {})),
        allocation=str(extra.get("allocation", {}).get("default", "usage")),
    )
    for provider, plan in catalog.account.items():
        if provider in sheets:
            for version in sheets[provider].versions:
                if plan not in version.plans:
                    raise InputError(
                        f"{settings_path}: account plan {plan!r} for {provider} is missing from the version "
                        f"effective {version.effective_from}"
                    )
    return catalog


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return load_catalog()


def record_versions(store: Store, catalog: Catalog) -> list[dict[str, Any]]:
    """Record every sheet version in the store. Returns the versions newly recorded (or corrected).

    A recorded version that a closed month was costed with is frozen: changing it is refused, since a price
    change is a new version. A version no closed month used yet may still be corrected (a typo, a missed meter).
    """
    added: list[dict[str, Any]] = []
    with store.transaction() as connection:
        for sheet in catalog.sheets.values():
            for version in sheet.versions:
                row = connection.execute(
                    "SELECT content_hash FROM price_sheet_versions WHERE provider = ? AND effective_from = ?",
                    [sheet.provider, version.effective_from],
                ).fetchone()
                if row is not None and row[0] == version.content_hash:
                    continue
                if row is not None:
                    used = connection.execute(
                        "SELECT min(month) FROM monthly_cost_lines WHERE provider = ? AND sheet_effective_from = ?",
                        [sheet.provider, version.effective_from],
                    ).fetchone()
                    if used is not None and used[0] is not None:
                        raise Conflict(
                            f"the {sheet.provider} price sheet effective {version.effective_from} was edited, but "
                            f"the closed month {used[0]:%Y-%m} was costed with it; a price change is a new version: "
                            "restore the old figures and add a [[versions]] entry with a new effective_from to "
                            f"data/prices/{sheet.provider}.toml"
                        )
                    connection.execute(
                        "DELETE FROM price_sheet_versions WHERE provider = ? AND effective_from = ?",
                        [sheet.provider, version.effective_from],
                    )
                connection.execute(
                    "INSERT INTO price_sheet_versions (provider, effective_from, content_hash, content, source)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        sheet.provider,
                        version.effective_from,
                        version.content_hash,
                        version.model_dump_json(),
                        version.source,
                    ],
                )
                added.append({"provider": sheet.provider, "effective_from": version.effective_from})
    return added


def list_versions(store: Store) -> list[dict[str, Any]]:
    """Every recorded price sheet version (for the console's price sheet page)."""
    return store.fetchall(
        "SELECT provider, effective_from, content_hash, source, recorded_at FROM price_sheet_versions"
        " ORDER BY provider, effective_from"
    )
