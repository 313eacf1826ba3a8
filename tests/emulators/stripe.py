"""Stripe emulator, built from ``shared/specs/stripe`` (spec3 subset 2023-08-16, fixtures 2026).

Form-encoded requests as Stripe takes them (``metadata[k]=v``, ``items[0][price]=...``); every parameter is
checked against the spec's request schema and an unknown one is refused with 400 ``parameter_unknown``, as
Stripe does. ``Idempotency-Key`` replays the first answer. Billing meters are not in the 2023 spec; their
parameters follow stripe-python 15.3.1 (see SOURCES.md). A subscription creates a paid invoice for its first
period. ``signed_event`` builds a webhook body and its ``Stripe-Signature`` header the way Stripe signs them
(HMAC-SHA256 of ``"{t}.{body}"``), independently of the stripe package.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import Fault, Faults, Instrumented, Recorder

SPEC_PATH = Path("/work/shared/specs/stripe/spec3.subset.json")
# Billing meters are absent from the 2023 spec: parameters from stripe-python (SOURCES.md "Known gaps").
METER_PARAMS = {
    "/v1/billing/meters": {
        "display_name",
        "event_name",
        "default_aggregation",
        "customer_mapping",
        "value_settings",
        "event_time_window",
        "expand",
    },
    "/v1/billing/meter_events": {"event_name", "payload", "identifier", "timestamp", "expand"},
}


def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return spec


def request_params(spec: dict[str, Any], path_template: str, method: str) -> set[str] | None:
    """Top-level parameter names the spec accepts for an operation (None: not in the spec)."""
    operation = spec["paths"].get(path_template, {}).get(method.lower())
    if operation is None:
        return METER_PARAMS.get(path_template)
    names = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
    body = operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
    names |= set(body.get("schema", {}).get("properties", {}))
    return names


def spec_template(spec: dict[str, Any], path: str) -> str | None:
    """The spec's path template matching a concrete path (``/v1/customers/cus_1`` -> ``/v1/customers/{customer}``)."""
    for template in spec["paths"]:
        pattern = "^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return str(template)
    return None


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def response_problems(spec: dict[str, Any], path: str, method: str, body: Any) -> list[str]:
    """Required properties the spec's 200 schema names that ``body`` lacks (and, for lists, each item lacks)."""
    template = spec_template(spec, path)
    if template is None:
        return []
    operation = spec["paths"][template].get(method.lower())
    if operation is None:
        return [f"{method} {template} is not in the spec"]
    schema = _resolve(spec, operation["responses"]["200"]["content"]["application/json"]["schema"])
    problems = [f"{template}: missing {name}" for name in schema.get("required", []) if name not in body]
    items = schema.get("properties", {}).get("data", {}).get("items")
    if items is not None and isinstance(body.get("data"), list):
        item_schema = _resolve(spec, items)
        for item in body["data"]:
            problems += [
                f"{template} item: missing {n}" for n in item_schema.get("required", []) if n not in item
            ]
    return problems


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0]=x`` -> {"a": {"b": {"0": "x"}}}; numeric-keyed dicts become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        last = parts[-1]
        if last == "[]" or key.endswith("[]"):
            node.setdefault(parts[-2] if last == "[]" else last, [])
        node[last] = value

    def listify(value: Any) -> Any:
        if isinstance(value, dict):
            value = {k: listify(v) for k, v in value.items()}
            if value and all(k.isdigit() for k in value):
                return [value[k] for k in sorted(value, key=int)]
        return value

    result: dict[str, Any] = listify(root)
    return result


def _error(status: int, message: str, *, code: str | None = None, param: str | None = None) -> JSONResponse:
    error = {"type": "invalid_request_error", "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return JSONResponse({"error": error}, status_code=status)


def _stripe_fault_answer(fault: Fault) -> tuple[int, bytes, dict[str, str]]:
    kind = "rate_limit_error" if fault.status == 429 else "api_error"
    body = {"error": {"type": kind, "message": f"injected {fault.status}"}}
    return fault.status or 500, json.dumps(body).encode(), {"content-type": "application/json"}


class StripeEmulator:
    def __init__(self, *, api_key: str = "sk_test_emulator") -> None:
        self.api_key = api_key
        self.spec = load_spec()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {
            k: {} for k in ("customer", "product", "price", "subscription", "invoice", "billing.meter")
        }
        self.meter_events: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._idempotent: dict[str, tuple[int, bytes]] = {}
        self.faults = Faults()
        self.recorder = Recorder()
        routes = [
            Route("/v1/customers", self.create_customer, methods=["POST"]),
            Route("/v1/customers/{id}", self.retrieve("customer"), methods=["GET"]),
            Route("/v1/products", self.create_product, methods=["POST"]),
            Route("/v1/prices", self.create_price, methods=["POST"]),
            Route("/v1/prices", self.list_prices, methods=["GET"]),
            Route("/v1/subscriptions", self.create_subscription, methods=["POST"]),
            Route("/v1/subscriptions/{id}", self.retrieve("subscription"), methods=["GET"]),
            Route("/v1/invoices", self.list_invoices, methods=["GET"]),
            Route("/v1/billing/meters", self.create_meter, methods=["POST"]),
            Route("/v1/billing/meters", self.list_meters, methods=["GET"]),
            Route("/v1/billing/meter_events", self.create_meter_event, methods=["POST"]),
        ]
        self.app = Instrumented(
            Starlette(routes=routes), self.faults, self.recorder, fault_answer=_stripe_fault_answer
        )

    # -- plumbing -----------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_emu{next(self._ids):08d}"

    async def _params(self, request: Request, template: str) -> tuple[dict[str, Any] | None, Response | None]:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return None, JSONResponse(
                {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}},
                status_code=401,
            )
        body = (await request.body()).decode()
        pairs = parse_qsl(body, keep_blank_values=True) + parse_qsl(request.url.query, keep_blank_values=True)
        params = parse_form(pairs)
        allowed = request_params(self.spec, template, request.method)
        if allowed is not None:
            for name in params:
                if name not in allowed:
                    return None, _error(
                        400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
                    )
        return params, None

    async def _idempotent_post(self, request: Request, template: str, make: Any) -> Response:
        key = request.headers.get("idempotency-key")
        if key and key in self._idempotent:
            status, body = self._idempotent[key]
            return Response(
                body,
                status_code=status,
                media_type="application/json",
                headers={"idempotent-replayed": "true"},
            )
        params, problem = await self._params(request, template)
        if problem is not None:
            return problem
        assert params is not None
        result = make(params)
        response = result if isinstance(result, Response) else JSONResponse(result)
        if key:
            self._idempotent[key] = (response.status_code, bytes(response.body))
        return response

    def retrieve(self, kind: str) -> Any:
        async def handler(request: Request) -> Response:
            found = self.objects[kind].get(request.path_params["id"])
            if found is None:
                return _error(404, f"No such {kind}: '{request.path_params['id']}'", code="resource_missing")
            return JSONResponse(found)

        return handler

    @staticmethod
    def _list(items: list[dict[str, Any]], url: str) -> dict[str, Any]:
        return {"object": "list", "data": items, "has_more": False, "url": url}

    # -- resources ----------------------------------------------------------------------------------

    async def create_customer(self, request: Request) -> Response:
        def make(p: dict[str, Any]) -> dict[str, Any]:
            customer = {
                "id": self._new_id("cus"),
                "object": "customer",
                "created": int(time.time()),
                "email": p.get("email"),
                "name": p.get("name"),
                "metadata": p.get("metadata", {}),
                "livemode": False,
                "balance": 0,
                "currency": None,
                "default_source": None,
                "delinquent": False,
                "description": p.get("description"),
                "discount": None,
                "invoice_prefix": "EMU",
                "invoice_settings": {
                    "custom_fields": None,
                    "default_payment_method": None,
                    "footer": None,
                    "rendering_options": None,
                },
                "preferred_locales": [],
                "shipping": None,
                "tax_exempt": "none",
                "test_clock": None,
                "address": None,
                "phone": None,
            }
            self.objects["customer"][customer["id"]] = customer
            return customer

        return await self._idempotent_post(request, "/v1/customers", make)

    async def create_product(self, request: Request) -> Response:
        def make(p: dict[str, Any]) -> Any:
            if not p.get("name"):
                return _error(400, "Missing required param: name.", code="parameter_missing", param="name")
            product = {
                "id": self._new_id("prod"),
                "object": "product",
                "name": p["name"],
                "active": True,
                "created": int(time.time()),
                "updated": int(time.time()),
                "metadata": p.get("metadata", {}),
                "livemode": False,
                "description": None,
                "images": [],
                "marketing_features": [],
                "package_dimensions": None,
                "shippable": None,
                "tax_code": None,
                "url": None,
                "default_price": None,
                "features": [],
            }
            self.objects["product"][product["id"]] = product
            return product

        return await self._idempotent_post(request, "/v1/products", make)

    async def create_price(self, request: Request) -> Response:
        def make(p: dict[str, Any]) -> Any:
            if p.get("product") not in self.objects["product"]:
                return _error(
                    400, f"No such product: '{p.get('product')}'", code="resource_missing", param="product"
                )
            lookup = p.get("lookup_key")
            if lookup and any(x["lookup_key"] == lookup for x in self.objects["price"].values()):
                if p.get("transfer_lookup_key") != "true":
                    return _error(
                        400, f"A price ({lookup}) already uses that lookup key.", param="lookup_key"
                    )
                for existing in self.objects["price"].values():
                    if existing["lookup_key"] == lookup:
                        existing["lookup_key"] = None
            recurring = p.get("recurring")
            price = {
                "id": self._new_id("price"),
                "object": "price",
                "product": p["product"],
                "active": True,
                "currency": p.get("currency", "usd"),
                "unit_amount": int(p.get("unit_amount", 0)),
                "lookup_key": lookup,
                "metadata": p.get("metadata", {}),
                "nickname": p.get("nickname"),
                "recurring": {
                    "interval": recurring.get("interval", "month"),
                    "interval_count": 1,
                    "usage_type": recurring.get("usage_type", "licensed"),
                    "meter": None,
                    "aggregate_usage": None,
                    "trial_period_days": None,
                }
                if recurring
                else None,
                "type": "recurring" if recurring else "one_time",
                "billing_scheme": "per_unit",
                "created": int(time.time()),
                "livemode": False,
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "custom_unit_amount": None,
                "unit_amount_decimal": str(p.get("unit_amount", 0)),
            }
            self.objects["price"][price["id"]] = price
            return price

        return await self._idempotent_post(request, "/v1/prices", make)

    async def list_prices(self, request: Request) -> Response:
        params, problem = await self._params(request, "/v1/prices")
        if problem is not None:
            return problem
        assert params is not None
        wanted = params.get("lookup_keys")
        wanted_set = set(wanted if isinstance(wanted, list) else [wanted]) if wanted else None
        items = [
            p for p in self.objects["price"].values() if wanted_set is None or p["lookup_key"] in wanted_set
        ]
        return JSONResponse(self._list(items, "/v1/prices"))

    async def create_subscription(self, request: Request) -> Response:
        def make(p: dict[str, Any]) -> Any:
            customer = p.get("customer")
            if customer not in self.objects["customer"]:
                return _error(
                    400, f"No such customer: '{customer}'", code="resource_missing", param="customer"
                )
            items = p.get("items") or []
            if not items or items[0].get("price") not in self.objects["price"]:
                return _error(400, "No such price", code="resource_missing", param="items[0][price]")
            price = self.objects["price"][items[0]["price"]]
            now = int(time.time())
            end = now + 30 * 86400
            subscription = {
                "id": self._new_id("sub"),
                "object": "subscription",
                "customer": customer,
                "status": "active",
                "created": now,
                "start_date": now,
                "current_period_start": now,
                "current_period_end": end,
                "metadata": p.get("metadata", {}),
                "livemode": False,
                "cancel_at_period_end": False,
                "automatic_tax": {"enabled": False},
                "billing_cycle_anchor": now,
                "collection_method": "charge_automatically",
                "currency": price["currency"],
                "items": self._list(
                    [
                        {
                            "id": self._new_id("si"),
                            "object": "subscription_item",
                            "price": price,
                            "quantity": 1,
                            "current_period_start": now,
                            "current_period_end": end,
                        }
                    ],
                    "/v1/subscription_items",
                ),
            }
            self.objects["subscription"][subscription["id"]] = subscription
            invoice = {
                "id": self._new_id("in"),
                "object": "invoice",
                "customer": customer,
                "status": "paid",
                "subscription": subscription["id"],
                "amount_due": price["unit_amount"],
                "amount_paid": price["unit_amount"],
                "currency": price["currency"],
                "created": now,
                "period_start": now,
                "period_end": end,
                "livemode": False,
                "amount_remaining": 0,
                "amount_shipping": 0,
                "attempt_count": 1,
                "attempted": True,
                "paid": True,
                "paid_out_of_band": False,
                "automatic_tax": {"enabled": False, "status": None},
                "collection_method": "charge_automatically",
                "default_tax_rates": [],
                "payment_settings": {
                    "default_mandate": None,
                    "payment_method_options": None,
                    "payment_method_types": None,
                },
                "post_payment_credit_notes_amount": 0,
                "pre_payment_credit_notes_amount": 0,
                "starting_balance": 0,
                "status_transitions": {
                    "finalized_at": now,
                    "marked_uncollectible_at": None,
                    "paid_at": now,
                    "voided_at": None,
                },
                "subtotal": price["unit_amount"],
                "total": price["unit_amount"],
                "total_tax_amounts": [],
                "lines": self._list([{"price": price, "amount": price["unit_amount"]}], "/v1/invoices/lines"),
            }
            self.objects["invoice"][invoice["id"]] = invoice
            return subscription

        return await self._idempotent_post(request, "/v1/subscriptions", make)

    async def list_invoices(self, request: Request) -> Response:
        params, problem = await self._params(request, "/v1/invoices")
        if problem is not None:
            return problem
        assert params is not None
        created = params.get("created") or {}
        items = [
            i
            for i in self.objects["invoice"].values()
            if (not params.get("customer") or i["customer"] == params["customer"])
            and (not params.get("status") or i["status"] == params["status"])
            and i["created"] >= int(created.get("gte", 0))
            and i["created"] < int(created.get("lt", 2**40))
        ]
        return JSONResponse(self._list(items, "/v1/invoices"))

    async def create_meter(self, request: Request) -> Response:
        def make(p: dict[str, Any]) -> Any:
            for required in ("display_name", "event_name", "default_aggregation"):
                if required not in p:
                    return _error(
                        400, f"Missing required param: {required}.", code="parameter_missing", param=required
                    )
            meter = {
                "id": self._new_id("mtr"),
                "object": "billing.meter",
                "display_name": p["display_name"],
                "event_name": p["event_name"],
                "status": "active",
                "livemode": False,
                "default_aggregation": p["default_aggregation"],
                "created": int(time.time()),
                "customer_mapping": p.get("customer_mapping")
                or {"event_payload_key": "stripe_customer_id", "type": "by_id"},
                "value_settings": p.get("value_settings") or {"event_payload_key": "value"},
                "event_time_window": p.get("event_time_window"),
                "updated": int(time.time()),
            }
            self.objects["billing.meter"][meter["id"]] = meter
            return meter

        return await self._idempotent_post(request, "/v1/billing/meters", make)

    async def list_meters(self, request: Request) -> Response:
        return JSONResponse(self._list(list(self.objects["billing.meter"].values()), "/v1/billing/meters"))

    async def create_meter_event(self, request: Request) -> Response:
        def make(p: dict[str, Any]) -> Any:
            payload = p.get("payload") or {}
            if not any(
                m["event_name"] == p.get("event_name") for m in self.objects["billing.meter"].values()
            ):
                return _error(
                    400, f"No active meter found for event_name {p.get('event_name')!r}.", param="event_name"
                )
            if payload.get("stripe_customer_id") not in self.objects["customer"]:
                return _error(400, "payload[stripe_customer_id] is not a customer", param="payload")
            identifier = p.get("identifier") or self._new_id("mev")
            if identifier in self.meter_events:
                return _error(
                    400,
                    f"An event already exists with identifier {identifier}.",
                    code="duplicate_meter_event",
                    param="identifier",
                )
            event = {
                "object": "billing.meter_event",
                "event_name": p["event_name"],
                "identifier": identifier,
                "payload": payload,
                "timestamp": int(p.get("timestamp", time.time())),
                "created": int(time.time()),
                "livemode": False,
            }
            self.meter_events[identifier] = event
            return event

        return await self._idempotent_post(request, "/v1/billing/meter_events", make)

    # -- webhooks -----------------------------------------------------------------------------------

    def signed_event(
        self,
        secret: str,
        event_type: str,
        obj: dict[str, Any],
        *,
        event_id: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[bytes, str]:
        event = {
            "id": event_id or self._new_id("evt"),
            "object": "event",
            "type": event_type,
            "api_version": "2026-06-24.dahlia",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": obj},
        }
        body = json.dumps(event).encode()
        t = int(time.time()) if timestamp is None else timestamp
        signature = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return body, f"t={t},v1={signature}"
