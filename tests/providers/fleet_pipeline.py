"""A pipeline plugin for the fleet test (loaded through LAUNCHDECK_EXTRA_PIPELINES): the web pipeline's own
cloud steps (preflight's plan-limit check, host, verify and promote) with a pre-built Worker bundle in place of
the database, transform and Next build, so hundreds of apps go through the real runner and providers fast."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from engine.retry import RetryPolicy
from engine.runner import NO_RETRY, Step, StepContext
from pipelines.providers import check_plan_limits
from pipelines.web import (
    VERIFY_RETRY,
    build_dir,
    discard_cloud_deployment,
    host_in_cloud,
    services_of,
    verify_and_promote_in_cloud,
)


def limits(ctx: StepContext) -> str:
    check_plan_limits(services_of(ctx), ctx.params, ctx.app)
    return "within the provider plans' limits"


def prebuilt(ctx: StepContext) -> str:
    """The build step's output, as the build leaves it: a Worker bundle and the deployment's variables."""
    engine = services_of(ctx)
    bundle = build_dir(ctx) / "worker"
    if bundle.exists():
        shutil.rmtree(bundle)
    shutil.copytree(Path(ctx.params["bundle"]), bundle)
    env = {"APP_NAME": ctx.app_name, "GREETING": str(ctx.params.get("greeting", "hello"))}
    engine.vault.put(ctx.app_id, f"env@{ctx.deployment_id}", json.dumps(env))
    ctx.state["env_names"] = sorted(env)
    ctx.state["worker_bundle"] = str(bundle)
    return "pre-built Worker bundle"


def fleet(_: dict[str, Any]) -> list[Step]:
    return [
        Step("preflight", limits, timeout=60, retry=NO_RETRY),
        Step("build", prebuilt, timeout=60),
        Step("host", host_in_cloud, discard_cloud_deployment, timeout=600, retry=RetryPolicy(max_attempts=2)),
        Step("verify", verify_and_promote_in_cloud, timeout=300, retry=VERIFY_RETRY),
    ]


PIPELINES = {"web-prebuilt": fleet}
