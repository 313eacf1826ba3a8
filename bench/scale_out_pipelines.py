"""Pipelines for bench/scale_out.py: steps that do nothing, so a run's time is the runner's own."""

from __future__ import annotations

from typing import Any

from engine.runner import Step

STEPS = 20


def nothing(ctx: Any) -> str:
    ctx.state[f"step-{ctx.step_position}"] = True
    return "ok"


def noop(params: dict[str, Any]) -> list[Step]:
    return [Step(f"noop-{i}", nothing, queue=params.get("queue", "control")) for i in range(STEPS)]


PIPELINES = {"noop": noop}
