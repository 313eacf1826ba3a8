"""Cost analytics: price sheets, the usage ledger, the pure cost model, tiers, margins and simulate.

What the console and the API call:

- ``rollup.cost_month(store, "YYYY-MM", method=)`` -> ``MonthCosts``; ``.by("app"|"provider"|"tier")``
- ``margins.margins_month(store, "YYYY-MM")`` -> ``Margins`` (``.tiers``, ``.apps``, ``.least_profitable(n)``)
- ``ledger.usage_series(store, start=, end=, app_id=, grain=)``
- ``sheets.list_versions(store)`` and ``sheets.default_catalog()``
- ``simulate.simulate(Scenario(...))``
- ``rollup.close_month(store, "YYYY-MM")`` and ``margins.export_month(store, "YYYY-MM", directory)``
"""
