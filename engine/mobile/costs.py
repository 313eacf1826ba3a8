"""Ledger-ready cost readings from mobile and desktop pipelines, for the cost engine to price.

Each reading names its provider, meter, quantity and unit, the time it happened and an idempotency key,
so recording the same event twice counts once. Store fees are fixed prices in integer cents (Apple
Developer Program $99 a year, Google Play registration $25 once); EAS builds are counted per build and
per minute by resource class, and CI runs by minutes, and priced by the cost engine's price sheets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.providers.eas import build_minutes

APPLE_DEVELOPER_PROGRAM_CENTS = 9900
GOOGLE_PLAY_REGISTRATION_CENTS = 2500


def _now() -> str:
    return datetime.now(UTC).isoformat()


def eas_build_readings(app_id: str, build: dict[str, Any]) -> list[dict[str, Any]]:
    common = {
        "provider": "eas",
        "app_id": app_id,
        "at": build.get("completedAt") or _now(),
        "dimensions": {
            "platform": build["platform"].lower(),
            "resource_class": build.get("resourceClass"),
            "build_id": build["id"],
            "status": build["status"],
        },
    }
    return [
        {
            **common,
            "meter": "build",
            "quantity": 1,
            "unit": "build",
            "idempotency_key": f"eas:build:{build['id']}",
        },
        {
            **common,
            "meter": "build_minutes",
            "quantity": build_minutes(build),
            "unit": "minute",
            "idempotency_key": f"eas:build:{build['id']}:minutes",
        },
    ]


def store_fee_readings(app_id: str, owner: str, platform: str) -> list[dict[str, Any]]:
    """The store account's fee, keyed per owner (per year for Apple) so it is charged once."""
    now = datetime.now(UTC)
    if platform == "ios":
        return [
            {
                "provider": "apple",
                "meter": "developer_program",
                "quantity": 1,
                "unit": "year",
                "amount_cents": APPLE_DEVELOPER_PROGRAM_CENTS,
                "app_id": app_id,
                "at": now.isoformat(),
                "dimensions": {"owner": owner},
                "idempotency_key": f"apple:developer_program:{owner}:{now.year}",
            }
        ]
    return [
        {
            "provider": "google_play",
            "meter": "developer_registration",
            "quantity": 1,
            "unit": "one_time",
            "amount_cents": GOOGLE_PLAY_REGISTRATION_CENTS,
            "app_id": app_id,
            "at": now.isoformat(),
            "dimensions": {"owner": owner},
            "idempotency_key": f"google_play:registration:{owner}",
        }
    ]


def ci_run_readings(app_id: str, run: dict[str, Any], platforms: list[str]) -> list[dict[str, Any]]:
    started = datetime.fromisoformat(
        str(run.get("run_started_at") or run["created_at"]).replace("Z", "+00:00")
    )
    ended = datetime.fromisoformat(str(run["updated_at"]).replace("Z", "+00:00"))
    minutes = max(1, -(-int((ended - started).total_seconds()) // 60))
    return [
        {
            "provider": "github_actions",
            "meter": "run_minutes",
            "quantity": minutes,
            "unit": "minute",
            "app_id": app_id,
            "at": run["updated_at"],
            "dimensions": {"run_id": run["id"], "platforms": ",".join(platforms)},
            "idempotency_key": f"github_actions:run:{run['id']}",
        }
    ]
