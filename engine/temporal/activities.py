"""The control activities: what the workflow asks of the engine (the journal, steps on the ``control``
queue, compensation). They run in the engine process, the store's only writer.

A step runs on a thread while its activity heartbeats every second; a cancel from the workflow (or a
timeout) sets the step's ``cancelled`` event, which its subprocesses watch, and the activity waits for
the step to stop before it reports, so undo never races the step it undoes.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from engine.errors import Cancelled, LaunchdeckError, NotFound, StepTimeout, TransientError
from engine.procs import kill_for_thread
from engine.redact import redact
from engine.runner import FINISHED, Step, StepContext, merge_state, needed_positions

if TYPE_CHECKING:
    from engine.temporal.runner import TemporalRunner

log = logging.getLogger("launchdeck.temporal")
STOP_GRACE_SECONDS = 30.0


def application_error(exc: BaseException) -> ApplicationError:
    """A step's exception as Temporal sees it: the type name decides retrying (see the workflow)."""
    if isinstance(exc, ApplicationError):
        return exc
    message = redact(str(exc)) if isinstance(exc, LaunchdeckError) else redact(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, Cancelled):
        return ApplicationError(message, type="Cancelled", non_retryable=True)
    if isinstance(exc, TransientError):
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
        return ApplicationError(message, type="Transient", next_retry_delay=delay)
    return ApplicationError(message, type="Terminal", non_retryable=True)


async def run_heartbeating(
    function: Callable[[], Any], cancelled: threading.Event, timeout: float, name: str
) -> Any:
    """Run ``function`` on a thread, heartbeating each second; on cancel, set ``cancelled`` and wait
    (a while) for the function to stop, then let the cancellation through. Past ``timeout`` the step
    is told to stop the same way and fails (not retried)."""
    loop = asyncio.get_running_loop()
    thread: dict[str, int] = {}

    def run() -> Any:
        thread["ident"] = threading.get_ident()  # engine.procs records the step's process groups by thread
        return function()

    def stop() -> None:
        cancelled.set()  # the step's own subprocesses watch this; those it registered are killed now
        kill_for_thread(thread.get("ident"))

    future = loop.run_in_executor(None, contextvars.copy_context().run, run)
    deadline = loop.time() + timeout
    try:
        while True:
            done, _ = await asyncio.wait([future], timeout=1.0)
            if done:
                return future.result()
            if loop.time() > deadline:
                stop()
                await asyncio.wait([future], timeout=STOP_GRACE_SECONDS)
                raise application_error(
                    StepTimeout(f"step {name!r} did not finish within its timeout of {timeout:g} s")
                )
            if not activity.info().is_local:  # a local activity lives in its workflow's task instead
                activity.heartbeat()
    except asyncio.CancelledError:
        stop()
        await asyncio.wait([future], timeout=STOP_GRACE_SECONDS)
        raise


def step_error(exc: BaseException, attempt: int, max_attempts: int, cancelled: bool) -> ApplicationError:
    """The error a step's attempt reports: a transient one is retried while the step's policy allows."""
    error = application_error(exc)
    if error.type == "Transient" and (attempt >= max_attempts or cancelled):
        return ApplicationError(error.message, type="Terminal", non_retryable=True)
    return error


class ControlActivities:
    def __init__(self, runner: TemporalRunner) -> None:
        self.runner = runner

    # -- helpers ------------------------------------------------------------------------------------

    def _deployment(self, deployment_id: str) -> dict[str, Any]:
        row = self.runner.store.fetchone("SELECT * FROM deployments WHERE id = ?", [deployment_id])
        if row is None:
            raise ApplicationError(f"no deployment {deployment_id}", type="Terminal", non_retryable=True)
        return row

    def _steps(self, deployment: dict[str, Any]) -> list[Step]:
        return self.runner.pipelines[deployment["pipeline"]](json.loads(deployment["params"]))

    def _context(self, deployment_id: str, position: int) -> tuple[StepContext, Step]:
        try:
            return self.runner.step_context(deployment_id, position)
        except NotFound as exc:  # the run or its app is gone: nothing to retry
            raise ApplicationError(str(exc), type="Terminal", non_retryable=True) from None

    # -- journal ------------------------------------------------------------------------------------

    def _begin(self, deployment_id: str) -> dict[str, Any]:
        runner = self.runner
        deployment = self._deployment(deployment_id)
        if deployment["status"] in FINISHED:
            # Already finished (undone, journaled): a workflow task that lost its local activities' results
            # runs them again from here, and must not run the steps again.
            return {"finished": deployment["status"], "steps": []}
        steps = self._steps(deployment)
        if deployment["status"] == "pending":
            runner._set_deployment(deployment_id, status="running", started_at="now()")
            runner._emit("started", deployment_id)
        statuses = {
            row["position"]: row["status"]
            for row in runner.store.fetchall(
                "SELECT position, status FROM step_runs WHERE deployment_id = ?", [deployment_id]
            )
        }
        needs = needed_positions(steps)
        return {
            "steps": [
                {
                    "name": step.name,
                    "needs": needs[position],
                    "queue": step.queue,
                    "timeout": step.timeout,
                    "max_attempts": step.retry.max_attempts,
                    "base_delay": step.retry.base_delay,
                    "max_delay": step.retry.max_delay,
                    "has_undo": step.undo is not None,
                    "same_machine_as": step.same_machine_as,
                    "status": statuses.get(position, "pending"),
                }
                for position, step in enumerate(steps)
            ]
        }

    def _run(self, ctx: StepContext, step: Step) -> dict[str, Any]:
        deployment_id, position = ctx.deployment_id, ctx.step_position
        self.runner.start_attempt(deployment_id, position)
        started = time.monotonic()
        try:
            if ctx.cancel_requested:
                raise Cancelled("the deployment was cancelled")
            detail = step.run(ctx)
        except BaseException as exc:
            if not isinstance(exc, LaunchdeckError):
                log.exception("step %s raised", step.name)
            error = step_error(exc, activity.info().attempt, step.retry.max_attempts, ctx.cancelled.is_set())
            # What the attempt noted (e.g. "this run created the project") is kept for the next attempt.
            with self.runner.store.transaction() as connection:
                merge_state(connection, deployment_id, ctx.state)
            if error.type == "Transient" and not error.non_retryable:
                self.runner.journal_log(
                    deployment_id, step.name, f"transient error, retrying: {error.message}"
                )
                self.runner._set_step(deployment_id, position, status="pending", error=error.message)
            raise error from None
        seconds = time.monotonic() - started
        self.runner.record_success(
            deployment_id, position, str(detail) if detail is not None else None, ctx.state, seconds
        )
        return {}

    # -- activities ---------------------------------------------------------------------------------

    @activity.defn(name="begin")
    async def begin(self, call: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._begin, call["deployment_id"])

    @activity.defn(name="run_step")
    async def run_step(self, call: dict[str, Any]) -> dict[str, Any]:
        ctx, step = await asyncio.to_thread(self._context, call["deployment_id"], int(call["position"]))
        self.runner._track(ctx)
        try:
            return await run_heartbeating(  # type: ignore[no-any-return]
                lambda: self._run(ctx, step), ctx.cancelled, step.timeout, step.name
            )
        finally:
            self.runner._untrack(ctx)

    @activity.defn(name="succeeded")
    async def succeeded(self, call: dict[str, Any]) -> None:
        """A worker's step finished: its outputs join the run's state as it marks the step done."""
        await asyncio.to_thread(
            self.runner.record_success,
            call["deployment_id"],
            int(call["position"]),
            call["detail"],
            call["state"],
            float(call["seconds"]),
        )

    @activity.defn(name="step_failed")
    async def step_failed(self, call: dict[str, Any]) -> None:
        def record() -> None:
            deployment_id, position = call["deployment_id"], int(call["position"])
            deployment = self._deployment(deployment_id)
            steps = self._steps(deployment)
            status = "cancelled" if call["cancelled"] else "failed"
            message = redact(str(call["error"]))
            self.runner._set_step(deployment_id, position, status=status, finished_at="now()", error=message)
            self.runner.journal_log(deployment_id, steps[position].name, f"{status}: {message}")
            # Steps that never started; those that ran beside this one (succeeded or stopped) keep theirs.
            self.runner.store.execute(
                "UPDATE step_runs SET status = 'skipped' WHERE deployment_id = ? AND status = 'pending'",
                [deployment_id],
            )

        await asyncio.to_thread(record)

    @activity.defn(name="undo_step")
    async def undo_step(self, call: dict[str, Any]) -> None:
        deployment_id, position = call["deployment_id"], int(call["position"])

        def undo() -> None:
            ctx, step = self._context(deployment_id, position)
            assert step.undo is not None
            try:
                step.undo(ctx)
            except Exception as exc:
                self.runner.journal_log(
                    deployment_id, step.name, f"undo failed, clean up by hand: {redact(str(exc))}"
                )
                return
            self._undone(call)

        await asyncio.to_thread(undo)

    def _undone(self, call: dict[str, Any]) -> None:
        deployment_id, position = call["deployment_id"], int(call["position"])
        name = self._steps(self._deployment(deployment_id))[position].name
        if position != int(call["failed_step"]):
            self.runner._set_step(deployment_id, position, status="undone")
        self.runner.journal_log(deployment_id, name, "undone")

    @activity.defn(name="undone")
    async def undone(self, call: dict[str, Any]) -> None:
        await asyncio.to_thread(self._undone, call)

    @activity.defn(name="log")
    async def log_line(self, call: dict[str, Any]) -> None:
        def write() -> None:
            name = self._steps(self._deployment(call["deployment_id"]))[int(call["position"])].name
            self.runner.journal_log(call["deployment_id"], name, str(call["line"]))

        await asyncio.to_thread(write)

    @activity.defn(name="finish")
    async def finish(self, call: dict[str, Any]) -> None:
        def record() -> None:
            runner, deployment_id, status = self.runner, call["deployment_id"], call["status"]
            if status == "succeeded":
                runner._set_deployment(deployment_id, status="succeeded", finished_at="now()", error=None)
                runner.journal_log(deployment_id, None, "deployment finished")
            else:
                name = self._steps(self._deployment(deployment_id))[int(call["position"])].name
                runner._set_deployment(
                    deployment_id,
                    status=status,
                    error=f"{name}: {redact(str(call['error']))}",
                    finished_at="now()",
                )
            runner._emit(status, deployment_id)

        await asyncio.to_thread(record)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.begin,
            self.run_step,
            self.succeeded,
            self.step_failed,
            self.undo_step,
            self.undone,
            self.log_line,
            self.finish,
        ]
