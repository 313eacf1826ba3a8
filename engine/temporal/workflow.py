"""The pipeline workflow: deterministic orchestration only (Temporal replays it from history).

Everything that touches the world is an activity, named by string so that this module imports nothing
but the SDK: the control activities ``begin``, ``run_step``, ``succeeded``, ``step_failed``,
``undo_step``, ``undone``, ``log``, ``finish`` (engine) and ``run_remote_step``, ``undo_remote_step`` (workers).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
    TimeoutType,
)

WORKER_HEARTBEAT = timedelta(seconds=5)  # a worker that dies is noticed this soon, and its step retried
JOURNAL = timedelta(seconds=60)
UNDO = timedelta(seconds=600)
# A step's own failures are counted against its retry policy by the activity itself (it raises a
# non-retryable error when they are used up); these extra attempts are for a worker or engine that died.
INFRASTRUCTURE_ATTEMPTS = 2
TIMEOUT_GRACE = 60.0  # the activity enforces the step's timeout; Temporal's is the backstop
# A step bound to one worker's machine (its own task queue) waits this long for that worker; past it the
# machine is taken for gone, and the steps it held are run again elsewhere.
MACHINE_WAIT = timedelta(seconds=30)
JOURNAL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.2), maximum_interval=timedelta(seconds=5))


def _queue(prefix: str, queue: str) -> str:
    return f"{prefix}.{queue}" if prefix else queue


def _machine(error: BaseException) -> str | None:
    """The own task queue of the worker whose step failed (it says so in the failure's details)."""
    cause: BaseException | None = error
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        machine = cause.details[0].get("machine")
        return str(machine) if machine else None
    return None


def _machine_gone(error: BaseException) -> bool:
    cause = error.cause if isinstance(error, ActivityError) else None
    return isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START


def _describe(error: BaseException) -> tuple[str, bool]:
    """(message, cancelled) for an activity's failure."""
    cause: BaseException | None = error
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, CancelledError) or isinstance(error, asyncio.CancelledError):
        return "the deployment was cancelled", True
    if isinstance(cause, ApplicationError):
        return cause.message, cause.type == "Cancelled"
    if isinstance(cause, TimeoutError):
        kind = cause.type.name.lower() if cause.type is not None else "timeout"
        return f"the step did not finish within its timeout ({kind})", False
    return str(cause or error), False


@workflow.defn(name="pipeline")
class PipelineWorkflow:
    def __init__(self) -> None:
        self._cancelled = False
        self._running: dict[int, asyncio.Task[None]] = {}  # step position -> its activity
        self._machines: dict[int, str] = {}  # step position -> the own task queue of the worker it ran on

    @workflow.signal
    def cancel(self) -> None:
        self._cancelled = True
        for task in self._running.values():
            task.cancel()

    async def _control(
        self, activity: str, arg: dict[str, Any], prefix: str, timeout: timedelta = JOURNAL
    ) -> Any:
        # Local activities: the engine hosts the workflow and serves the control queue, so its own
        # work skips the round trip through Temporal's task queues (milliseconds, not tens of them).
        return await workflow.execute_local_activity(
            activity, arg, start_to_close_timeout=timeout, retry_policy=JOURNAL_RETRY
        )

    @workflow.run
    async def run(self, run: dict[str, Any]) -> str:
        """Start every step whose ``needs`` all succeeded (in plan order, so replays match), side by side.
        On a failure or a cancel, stop the other running steps, then undo what succeeded, newest first."""
        deployment_id, prefix = run["deployment_id"], run["prefix"]
        plan: dict[str, Any] = await self._control("begin", {"deployment_id": deployment_id}, prefix)
        if plan.get("finished"):
            return str(plan["finished"])
        steps: list[dict[str, Any]] = plan["steps"]
        done = [position for position, step in enumerate(steps) if step["status"] == "succeeded"]
        failures: list[tuple[int, BaseException]] = []  # the first is the run's failure
        while True:
            for position, step in enumerate(steps):
                # A plan journaled before steps had needs ran them in order.
                needs = step.get("needs", [position - 1] if position else [])
                ready = all(needed in done for needed in needs)
                if failures or not ready or position in done or position in self._running:
                    continue
                if self._cancelled:
                    failures.append(
                        (position, ApplicationError("the deployment was cancelled", type="Cancelled"))
                    )
                    break
                call = {"deployment_id": deployment_id, "position": position}
                self._running[position] = asyncio.ensure_future(self._run_step(steps, position, call, prefix))
            if not self._running:
                break
            await workflow.wait_condition(lambda: any(task.done() for task in self._running.values()))
            for position in sorted(self._running):
                task = self._running[position]
                if not task.done():
                    continue
                del self._running[position]
                try:
                    task.result()
                except (ActivityError, ApplicationError, asyncio.CancelledError) as error:
                    if not failures:  # the other branch is stopped; its step is undone with the rest
                        for other in self._running.values():
                            other.cancel()
                    failures.append((position, error))
                    continue
                done.append(position)
        if not failures:
            await self._control("finish", {"deployment_id": deployment_id, "status": "succeeded"}, prefix)
            return "succeeded"
        return await self._fail(steps, done, failures, deployment_id, prefix)

    async def _fail(
        self,
        steps: list[dict[str, Any]],
        done: list[int],
        failures: list[tuple[int, BaseException]],
        deployment_id: str,
        prefix: str,
    ) -> str:
        failed, first_error = failures[0]
        message, cancelled = _describe(first_error)
        cancelled = cancelled or self._cancelled
        for position, error in reversed(failures):  # the run's own failure last: it skips the rest
            stopped = position != failed and _describe(error)[1] and not self._cancelled
            note, was_cancelled = (
                (f"stopped: step {steps[failed]['name']!r} failed", True) if stopped else _describe(error)
            )
            call = {"deployment_id": deployment_id, "position": position}
            await self._control(
                "step_failed", {**call, "error": note, "cancelled": was_cancelled or cancelled}, prefix
            )
        call = {"deployment_id": deployment_id, "position": failed}
        # Undo the failed and stopped steps too: they may have created part of their resource.
        for undo_position in [position for position, _ in failures] + list(reversed(done)):
            undo = steps[undo_position]
            if not undo["has_undo"]:
                continue
            undo_call = {**call, "position": undo_position, "failed_step": failed}
            if undo["queue"] == "control":
                await self._control("undo_step", undo_call, prefix, UNDO)
            else:
                try:
                    machine = self._machines.get(undo_position)  # undone where it ran
                    await workflow.execute_activity(
                        "undo_remote_step",
                        undo_call,
                        task_queue=machine or _queue(prefix, undo["queue"]),
                        start_to_close_timeout=UNDO,
                        # No worker for that long: the journal says to clean up by hand.
                        schedule_to_close_timeout=UNDO * 2,
                        schedule_to_start_timeout=MACHINE_WAIT if machine else None,
                        retry_policy=RetryPolicy(maximum_attempts=3),
                    )
                except ActivityError as undo_error:
                    await self._control(
                        "log",
                        {
                            **undo_call,
                            "line": f"undo failed, clean up by hand: {_describe(undo_error)[0]}",
                        },
                        prefix,
                    )
                    continue
                await self._control("undone", undo_call, prefix)
        status = "cancelled" if cancelled else "failed"
        await self._control("finish", {**call, "status": status, "error": message}, prefix)
        return status

    async def _run_step(
        self, steps: list[dict[str, Any]], position: int, call: dict[str, Any], prefix: str
    ) -> None:
        step = steps[position]
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=step["base_delay"]),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=step["max_delay"]),
            maximum_attempts=step["max_attempts"] + INFRASTRUCTURE_ATTEMPTS,
            non_retryable_error_types=["Terminal"],
        )
        timeout = timedelta(seconds=step["timeout"] + TIMEOUT_GRACE)
        wait = workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
        names = [other["name"] for other in steps]
        anchor = names.index(step["same_machine_as"]) if step.get("same_machine_as") in names else None
        machine = self._machines.get(anchor) if anchor is not None else None
        if step["queue"] == "control":  # in the engine, as a local activity (see ``_control``)
            activity = asyncio.ensure_future(
                workflow.execute_local_activity(
                    "run_step",
                    call,
                    start_to_close_timeout=timeout,
                    retry_policy=retry,
                    cancellation_type=wait,
                )
            )
        else:  # on a worker: heartbeats tell Temporal within seconds that a worker is gone
            activity = asyncio.ensure_future(
                workflow.execute_activity(
                    "run_remote_step",
                    call,
                    task_queue=machine or _queue(prefix, step["queue"]),
                    start_to_close_timeout=timeout,
                    schedule_to_start_timeout=MACHINE_WAIT if machine else None,
                    heartbeat_timeout=WORKER_HEARTBEAT,
                    retry_policy=retry,
                    cancellation_type=wait,
                )
            )
        try:
            result = await activity
        except ActivityError as error:
            if machine is not None and anchor is not None and _machine_gone(error):
                # The worker that ran the earlier step is gone, and what it left with it: both again.
                self._machines.pop(anchor, None)
                await self._run_step(steps, anchor, {**call, "position": anchor}, prefix)
                await self._run_step(steps, position, call, prefix)
                return
            failed_on = _machine(error)
            if failed_on:
                self._machines[position] = failed_on
            raise
        if isinstance(result, dict) and result.get("machine"):
            self._machines[position] = str(result["machine"])
        if (
            isinstance(result, dict) and "outputs" in result
        ):  # a worker's step: journaled before any later one
            await self._control("succeeded", {**call, **result["outputs"]}, prefix)
