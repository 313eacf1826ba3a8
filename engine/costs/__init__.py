"""Cost analytics: price sheets, the usage ledger, the pure cost model, tiers, margins and simulate.

What the console and the API call (all take the engine's ``Store``; months are ``"YYYY-MM"``):

- ``rollup.cost_month(store, month, method=)`` -> ``MonthCosts``; ``.by("app" | "provider" | "tier")`` rows in cents,
  each app with its Railway baseline; ``.total_cents()``, ``.idle_cents()``; frozen once the month is closed
- ``rollup.daily_costs(store, month, app_id=)`` -> per app and day, adding up to the month
- ``margins.margins_month(store, month)`` -> ``Margins`` (``.tiers``, ``.apps``, ``.least_profitable(n)``, ``.totals()``)
- ``margins.export_month(store, month, directory)`` -> Parquet and CSV files for finance
- ``ledger.usage_series(store, start=, end=, app_id=, grain="hour" | "day" | "month")``
- ``sheets.list_versions(store)``, ``sheets.default_catalog()`` (sheets, plans, sources)
- ``simulate.simulate(Scenario(...))`` (what-if)
- ``closing.close_month(store, month)`` (operator action; the billing job closes months itself)
- ``tiers.check_deploy_allowed(...)`` (deploy preflight), ``tiers.set_spend_cap(store, user, cents)``
- ``limits.headroom(store)``, ``limits.check_room(store, provider)`` (provider plan limits, before anything is
  created), ``limits.cloudflare_mode(store, app, ...)`` (Workers or Workers for Platforms)
- usage sources in ``sources``: edge traffic and server resources, PostgreSQL, libSQL files, cloud usage APIs
  (Turso, Neon, Cloudflare analytics, Vercel billing charges), local builds, mobile and desktop run costs
"""
