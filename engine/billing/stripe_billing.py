"""Stripe through the ``stripe`` package, its API base taken from ``LAUNCHDECK_STRIPE_API_URL``.

Every create is idempotent: customers and subscriptions carry an ``Idempotency-Key`` derived from our ids,
tier prices are found again by lookup key, meter events carry an ``identifier`` Stripe de-duplicates on.
Stripe's errors are mapped at this boundary: 429, 5xx and connection failures become ``ProviderUnavailable``
(retry later, honouring Retry-After), the rest ``ProviderError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TypeVar

import stripe

from engine.billing.webhooks import record_invoice
from engine.config import Settings
from engine.costs.rollup import month_end
from engine.costs.tiers import TierTable, default_tiers
from engine.errors import ConfigError, ProviderError, ProviderUnavailable
from engine.retry import parse_retry_after
from engine.store import Store

T = TypeVar("T")
LOOKUP_PREFIX = "launchdeck-tier-"
OVERAGE_EVENT = "launchdeck_overage"


@contextmanager
def stripe_errors(action: str) -> Iterator[None]:
    try:
        yield
    except (stripe.RateLimitError, stripe.APIConnectionError) as exc:
        headers = getattr(exc, "headers", None) or {}
        retry_after = parse_retry_after(headers.get("retry-after"))
        raise ProviderUnavailable(
            "stripe", f"{action}: {exc.user_message or exc}", status=exc.http_status, retry_after=retry_after
        ) from None
    except stripe.StripeError as exc:
        status = exc.http_status
        if status is not None and status >= 500:
            raise ProviderUnavailable(
                "stripe", f"{action}: {exc.user_message or exc}", status=status
            ) from None
        raise ProviderError("stripe", f"{action}: {exc.user_message or exc}", status=status) from None


class StripeBilling:
    def __init__(
        self,
        api_key: str,
        api_base: str,
        *,
        tiers: TierTable | None = None,
        max_retries: int = 0,
        timeout: float = 30.0,
    ) -> None:
        # Retries are the pipeline runner's (it honours Retry-After); the package's own retries stay off by default.
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")},
            max_network_retries=max_retries,
            http_client=stripe.RequestsClient(
                timeout=timeout
            ),  # requests: a dependency of the stripe package
        )
        self.tiers = tiers or default_tiers()

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeBilling | None:
        """None when Stripe is not configured: revenue is then each tier's list price."""
        if settings.stripe_api_key is None:
            return None
        return cls(settings.stripe_api_key.get_secret_value(), settings.stripe_api_url)

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        with stripe_errors(action):
            return fn()

    # -- catalogue ----------------------------------------------------------------------------------

    def ensure_tier_prices(self, store: Store) -> dict[str, str]:
        """A product and monthly price per paid tier (found by lookup key, created once). tier -> price id."""
        known = {r["tier"]: r for r in store.fetchall("SELECT * FROM stripe_tier_prices")}
        found: dict[str, str] = {}
        for tier in self.tiers.tiers.values():
            if tier.price_cents == 0:
                continue
            row = known.get(tier.name)
            if row and row["amount_cents"] == tier.price_cents:
                found[tier.name] = row["price_id"]
                continue
            lookup = f"{LOOKUP_PREFIX}{tier.name}-{tier.price_cents}"
            with stripe_errors("list prices"):
                existing = self.client.v1.prices.list({"lookup_keys": [lookup], "limit": 1})
            if existing.data:
                price = existing.data[0]
            else:
                with stripe_errors("create product"):
                    product = self.client.v1.products.create(
                        {"name": f"Launchdeck {tier.name}", "metadata": {"tier": tier.name}},
                        {"idempotency_key": f"ld-product-{tier.name}"},
                    )
                with stripe_errors("create price"):
                    price = self.client.v1.prices.create(
                        {
                            "product": product.id,
                            "unit_amount": tier.price_cents,
                            "currency": "usd",
                            "recurring": {"interval": "month"},
                            "lookup_key": lookup,
                            "metadata": {"tier": tier.name},
                        },
                        {"idempotency_key": f"ld-price-{lookup}"},
                    )
            store.execute(
                "INSERT OR REPLACE INTO stripe_tier_prices VALUES (?, ?, ?, ?)",
                [
                    tier.name,
                    price.product if isinstance(price.product, str) else price.product.id,
                    price.id,
                    tier.price_cents,
                ],
            )
            found[tier.name] = price.id
        return found

    # -- customers and subscriptions --------------------------------------------------------------------

    def ensure_customer(self, store: Store, user_id: str, *, email: str | None = None) -> str:
        row = store.fetchone("SELECT stripe_customer_id FROM user_subscriptions WHERE user_id = ?", [user_id])
        if row and row["stripe_customer_id"]:
            return str(row["stripe_customer_id"])
        with stripe_errors("create customer"):
            customer = self.client.v1.customers.create(
                {"metadata": {"launchdeck_user_id": user_id}, **({"email": email} if email else {})},
                {"idempotency_key": f"ld-customer-{user_id}"},
            )
        if row is None:
            store.execute(
                "INSERT INTO user_subscriptions (user_id, tier, stripe_customer_id) VALUES (?, 'free', ?)",
                [user_id, customer.id],
            )
        else:
            store.execute(
                "UPDATE user_subscriptions SET stripe_customer_id = ?, updated_at = now() WHERE user_id = ?",
                [customer.id, user_id],
            )
        return str(customer.id)

    def subscribe(self, store: Store, user_id: str, tier: str) -> str:
        """Subscribe a user to a paid tier; the tier itself changes when Stripe's webhook confirms it."""
        price_id = self.ensure_tier_prices(store).get(tier)
        if price_id is None:
            from engine.errors import InputError

            raise InputError(
                f"tier {tier!r} has no Stripe price (free or custom-priced tiers are not sold here)"
            )
        customer = self.ensure_customer(store, user_id)
        subscription = self._call(
            "create subscription",
            lambda: self.client.v1.subscriptions.create(
                {
                    "customer": customer,
                    "items": [{"price": price_id}],
                    "metadata": {"launchdeck_user_id": user_id, "tier": tier},
                },
                {"idempotency_key": f"ld-subscription-{user_id}-{tier}"},
            ),
        )
        store.execute(
            "UPDATE user_subscriptions SET stripe_subscription_id = ?, updated_at = now() WHERE user_id = ?",
            [subscription.id, user_id],
        )
        return str(subscription.id)

    # -- revenue ------------------------------------------------------------------------------------

    def sync_revenue(self, store: Store, month: date) -> int:
        """Record paid invoices created in ``month`` as revenue (idempotent). Returns users recorded."""
        start = int(datetime(month.year, month.month, 1, tzinfo=UTC).timestamp())
        end_day = month_end(month)
        end = int(datetime(end_day.year, end_day.month, 1, tzinfo=UTC).timestamp())
        users = {
            r["stripe_customer_id"]: r
            for r in store.fetchall(
                "SELECT user_id, tier, stripe_customer_id FROM user_subscriptions WHERE stripe_customer_id IS NOT NULL"
            )
        }
        invoices = self._call(
            "list invoices",
            lambda: self.client.v1.invoices.list(
                {"status": "paid", "created": {"gte": start, "lt": end}, "limit": 100}
            ),
        )
        synced_at = datetime.now(UTC).replace(tzinfo=None)
        found = [
            (users[invoice.customer]["user_id"], invoice.to_dict(), str(invoice.status or "paid"))
            for invoice in invoices.auto_paging_iter()
            if isinstance(invoice.customer, str) and invoice.customer in users
        ]
        with store.transaction():
            for user_id, invoice, status in found:
                # As Stripe says it is now: a webhook for an older event arriving later changes nothing.
                record_invoice(store, user_id, invoice, status, synced_at)
        return len({user_id for user_id, _, _ in found})

    # -- usage over quota as meter events ----------------------------------------------------------------

    def ensure_meter(self) -> str:
        meters = self._call("list meters", lambda: self.client.v1.billing.meters.list())
        for meter in meters.data:
            if meter.event_name == OVERAGE_EVENT:
                return str(meter.id)
        meter = self._call(
            "create meter",
            lambda: self.client.v1.billing.meters.create(
                {
                    "display_name": "Launchdeck usage over quota",
                    "event_name": OVERAGE_EVENT,
                    "default_aggregation": {"formula": "sum"},
                },
                {"idempotency_key": "ld-meter-overage"},
            ),
        )
        return str(meter.id)

    def report_overage(
        self, store: Store, month: date, user_id: str, app_id: str, metric: str, over: int
    ) -> int:
        """Report an app's usage over quota so far this month; only the increase since the last report is sent.

        The identifier names the app, month, metric and running total, so a retry after a crash sends an event
        Stripe (and our table) already has, and nothing is billed twice. Returns the value sent.
        """
        sent = int(
            store.scalar(
                "SELECT coalesce(max(value), 0) FROM stripe_meter_events WHERE app_id = ? AND month = ? AND metric = ?",
                [app_id, month, metric],
            )
            or 0
        )
        increase = over - sent
        if increase <= 0:
            return 0
        customer = self.ensure_customer(store, user_id)
        identifier = f"ld-{app_id}-{month:%Y-%m}-{metric}-{over}"
        try:
            self._call(
                "send meter event",
                lambda: self.client.v1.billing.meter_events.create(
                    {
                        "event_name": OVERAGE_EVENT,
                        "identifier": identifier,
                        "payload": {"stripe_customer_id": customer, "value": str(increase)},
                    }
                ),
            )
        except ProviderError as exc:
            if exc.status != 400 or "already exists" not in exc.message:
                raise
        store.execute(
            "INSERT OR IGNORE INTO stripe_meter_events (identifier, user_id, app_id, month, metric, value)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [identifier, user_id, app_id, month, metric, over],
        )
        return increase


def require(settings: Settings) -> StripeBilling:
    billing = StripeBilling.from_settings(settings)
    if billing is None:
        raise ConfigError("STRIPE_API_KEY is not set: Stripe billing is off (revenue uses tier list prices)")
    return billing
