"""The in-process pipeline runner, and what every runner shares: ``Step``, ``RetryPolicy``,
``StepContext`` and the journal helpers.

The engine runs pipelines on Temporal by default (``engine/temporal/``, ``TemporalRunner`` subclasses
this class for its journal and submission); this thread-pool runner remains for
``LAUNCHDECK_RUNNER=local`` and for tests of steps without Temporal. It runs a pipeline's steps one at a
time in their order (which satisfies every step's ``needs``); only the Temporal runner runs independent
steps side by side.

A pipeline is an ordered list of steps. Every state change is journaled in the store (``deployments``,
``step_runs``, ``deployment_log``) before the runner moves on, so an engine that was killed resumes each
unfinished pipeline from its journal: finished steps are not run again (their outputs come back from
``deployments.state``) and the step that was running is run again, which is safe because a step names
every resource it creates after the app and deployment (``ctx.resource_name``) and adopts what it finds.

A step that fails terminally (or exhausts its retries, or passes its timeout, or is cancelled) fails
the run: the steps that succeeded are undone in reverse order, and the app's live deployment, which only
a final promote step changes, stays as it was.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from engine.errors import (
    Cancelled,
    LaunchdeckError,
    LockTimeout,
    NotFound,
    StepTimeout,
    TransientError,
)
from engine.procs import kill_for_thread
from engine.records import App
from engine.redact import redact
from engine.retry import RetryPolicy
from engine.store import Store

log = logging.getLogger("launchdeck.runner")

ACTIVE = ("pending", "running")
FINISHED = ("succeeded", "failed", "cancelled")
STOP_GRACE_SECONDS = 10.0  # how long a timed-out step may take to notice, after its processes were killed


NO_RETRY = RetryPolicy(max_attempts=1)


class StepContext:
    """What a step sees: its parameters, earlier steps' outputs, and ways to report."""

    def __init__(self, runner: Runner, deployment: dict[str, Any], app: Mapping[str, Any]) -> None:
        self._runner = runner
        self.deployment_id: str = str(deployment["id"])
        self.app = App.model_validate(app)  # its record as the run starts
        self.params: dict[str, Any] = json.loads(deployment["params"])
        self.state: dict[str, Any] = json.loads(deployment["state"] or "{}")
        self.cancelled = threading.Event()
        self.step_name: str | None = None
        self.step_position: int = 0
        self._last_progress = 0.0
        self.services = runner.services

    @property
    def app_id(self) -> str:
        return self.app.id

    @property
    def app_name(self) -> str:
        return self.app.name

    def resource_name(self, kind: str) -> str:
        """A name for a resource this deployment creates, stable across re-runs of the deployment."""
        return f"{self.app_name}-{self.deployment_id[:8]}-{kind}"

    def log(self, line: str) -> None:
        self._runner.journal_log(self.deployment_id, self.step_name, line)

    def progress(self, done: int, total: int | None, unit: str, detail: str | None = None) -> None:
        now = time.monotonic()
        if total is not None and done < total and now - self._last_progress < 0.25:
            return  # journal at most four progress updates a second
        self._last_progress = now
        self._runner.store.execute(
            "UPDATE step_runs SET progress_done = ?, progress_total = ?, progress_unit = ?,"
            " detail = coalesce(?, detail) WHERE deployment_id = ? AND position = ?",
            [done, total, unit, detail, self.deployment_id, self.step_position],
        )

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("the deployment was cancelled")


# A step's functions see a StepContext on the engine, and a WorkerContext (engine.temporal.worker: the
# same names, plus the worker's folder and ``inputs``) on a worker.
StepFunction = Callable[[Any], "str | None"]
UndoFunction = Callable[[Any], object]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFunction
    undo: UndoFunction | None = None
    timeout: float = 600.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Where the step runs: "control" is the engine itself (store, vault, edge); "build" and "import" are
    # `launchdeck worker` processes, possibly on other machines, which reach the engine only by its API.
    queue: str = "control"
    # Names of earlier steps this one needs; empty: the step before it. A step starts once all it
    # needs succeeded, so independent branches (the database, the install) run side by side on Temporal.
    needs: tuple[str, ...] = ()
    # On a worker: what the engine hands the step when a worker starts it (computed on the engine, from
    # its workspace, vault and store, which the worker never sees), as the step's ``ctx.inputs``.
    inputs: Callable[[StepContext], dict[str, Any]] | None = None
    # On a worker: the name of an earlier worker step whose machine this one must run on (it uses what
    # that step left in the worker's folder); it goes to that worker's own task queue.
    same_machine_as: str = ""


def needed_positions(steps: list[Step]) -> list[list[int]]:
    """For each step, the positions of the steps it needs (see ``Step.needs``)."""
    positions: dict[str, int] = {}
    found: list[list[int]] = []
    for position, step in enumerate(steps):
        if not step.needs:
            found.append([position - 1] if position else [])
        else:
            unknown = [name for name in step.needs if name not in positions]
            if unknown:
                raise ValueError(f"step {step.name!r} needs {unknown}, which are not earlier steps")
            found.append([positions[name] for name in step.needs])
        positions[step.name] = position
    return found


PipelineFactory = Callable[[dict[str, Any]], list[Step]]
Listener = Callable[[str, dict[str, Any]], None]


class Runner:
    def __init__(
        self,
        store: Store,
        pipelines: dict[str, PipelineFactory],
        *,
        workers: int = 4,
        services: Any = None,
    ) -> None:
        self.store = store
        self.pipelines = pipelines
        self.services = services
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipeline")
        self._contexts: dict[str, StepContext] = {}
        self._contexts_lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._closing = threading.Event()

    # -- events -----------------------------------------------------------------------------------

    def on_event(self, listener: Listener) -> None:
        """``listener(event, deployment)`` for started, succeeded, failed and cancelled runs."""
        self._listeners.append(listener)

    def _emit(self, event: str, deployment_id: str) -> None:
        row = self.store.fetchone("SELECT * FROM deployments WHERE id = ?", [deployment_id])
        for listener in self._listeners:
            try:
                listener(event, row or {})
            except Exception:  # a listener must never break a pipeline
                log.exception("event listener failed for %s", event)

    # -- journal ----------------------------------------------------------------------------------

    def journal_log(self, deployment_id: str, step: str | None, line: str) -> None:
        line = redact(line)
        log.info("[%s] %s: %s", deployment_id[:8], step or "-", line)
        self.store.execute(
            "INSERT INTO deployment_log (deployment_id, step, line) VALUES (?, ?, ?)",
            [deployment_id, step, line],
        )

    @staticmethod
    def _assignments(columns: dict[str, Any]) -> tuple[str, list[Any]]:
        """SET clause and values; the value "now()" means the database's clock."""
        clause = ", ".join(
            f"{name} = now()" if value == "now()" else f"{name} = ?" for name, value in columns.items()
        )
        return clause, [value for value in columns.values() if value != "now()"]

    def _set_step(self, deployment_id: str, position: int, **columns: Any) -> None:
        clause, values = self._assignments(columns)
        self.store.execute(
            f"UPDATE step_runs SET {clause} WHERE deployment_id = ? AND position = ?",
            [*values, deployment_id, position],
        )

    def _set_deployment(self, deployment_id: str, **columns: Any) -> None:
        clause, values = self._assignments(columns)
        self.store.execute(f"UPDATE deployments SET {clause} WHERE id = ?", [*values, deployment_id])

    # -- submission -------------------------------------------------------------------------------

    def submit(
        self,
        app_id: str,
        pipeline: str,
        params: dict[str, Any],
        *,
        requested_by: str,
        lock_timeout: float = 30.0,
    ) -> str:
        """Journal a new run and start it. Waits up to ``lock_timeout`` while another run of the
        same app is active, then refuses with the id of the run that holds the app."""
        if pipeline not in self.pipelines:
            raise NotFound(f"no pipeline named {pipeline!r}; known: {', '.join(sorted(self.pipelines))}")
        steps = self.pipelines[pipeline](params)
        needed_positions(steps)  # a step that needs a later or unknown step is refused here, not mid-run
        deployment_id = str(uuid.uuid4())
        deadline = time.monotonic() + lock_timeout
        while True:
            with self.store.transaction() as connection:
                holder = connection.execute(
                    "SELECT id FROM deployments WHERE app_id = ? AND status IN ('pending', 'running')"
                    " ORDER BY created_at LIMIT 1",
                    [app_id],
                ).fetchone()
                if holder is None:
                    connection.execute(
                        "INSERT INTO deployments (id, app_id, pipeline, status, params, requested_by)"
                        " VALUES (?, ?, ?, 'pending', ?, ?)",
                        [deployment_id, app_id, pipeline, json.dumps(params), requested_by],
                    )
                    connection.executemany(
                        "INSERT INTO step_runs (deployment_id, position, name, status) VALUES (?, ?, ?, 'pending')",
                        [[deployment_id, i, step.name] for i, step in enumerate(steps)],
                    )
                    break
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"app is busy: deployment {holder[0]} holds its lock (waited {lock_timeout:g} s); "
                    f"cancel it with `launchdeck status {holder[0]} --cancel` or try again when it ends",
                    holder=str(holder[0]),
                )
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        self._start(deployment_id, pipeline, params)
        return deployment_id

    def _start(self, deployment_id: str, pipeline: str, params: dict[str, Any]) -> None:
        """Start a journaled run (the in-process runner: on its thread pool)."""
        self._executor.submit(self._execute_safely, deployment_id)

    def resume_unfinished(self) -> list[str]:
        """Start again every run the journal shows as unfinished (after a crash or a restart)."""
        rows = self.store.fetchall(
            "SELECT id FROM deployments WHERE status IN ('pending', 'running') ORDER BY created_at"
        )
        for row in rows:
            deployment_id = str(row["id"])
            self.journal_log(deployment_id, None, "engine restarted: resuming from the journal")
            self._executor.submit(self._execute_safely, deployment_id)
        return [str(row["id"]) for row in rows]

    def cancel(self, deployment_id: str) -> bool:
        """Ask a run to stop. Returns False when it had already finished."""
        row = self.store.fetchone("SELECT status FROM deployments WHERE id = ?", [deployment_id])
        if row is None:
            raise NotFound(f"no deployment {deployment_id}")
        if row["status"] not in ACTIVE:
            return False
        self._set_deployment(deployment_id, cancel_requested=True)
        with self._contexts_lock:
            ctx = self._contexts.get(deployment_id)
        if ctx is not None:
            ctx.cancelled.set()
        return True

    def active_count(self) -> int:
        with self._contexts_lock:
            return len(self._contexts)

    def wait(self, deployment_id: str, timeout: float = 600.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            row = self.store.fetchone("SELECT * FROM deployments WHERE id = ?", [deployment_id])
            if row is None:
                raise NotFound(f"no deployment {deployment_id}")
            if row["status"] in FINISHED or time.monotonic() > deadline:
                return row
            time.sleep(0.05)

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work. Runs still going are cancelled cooperatively only if ``wait`` is False;
        either way the journal lets the next engine resume them."""
        self._closing.set()
        self._executor.shutdown(wait=wait, cancel_futures=True)

    # -- execution --------------------------------------------------------------------------------

    def _execute_safely(self, deployment_id: str) -> None:
        try:
            self._execute(deployment_id)
        except Exception as exc:  # the journal must never be left "running" by a runner bug
            log.exception("runner error in %s", deployment_id)
            self._set_deployment(
                deployment_id, status="failed", error=redact(f"internal error: {exc}"), finished_at="now()"
            )

    def _execute(self, deployment_id: str) -> None:
        deployment = self.store.fetchone("SELECT * FROM deployments WHERE id = ?", [deployment_id])
        if deployment is None or deployment["status"] not in ACTIVE:
            return
        app = self.store.fetchone("SELECT * FROM deployed_apps WHERE id = ?", [deployment["app_id"]])
        if app is None:
            self._set_deployment(
                deployment_id, status="failed", error="the app no longer exists", finished_at="now()"
            )
            return
        steps = self.pipelines[deployment["pipeline"]](json.loads(deployment["params"]))
        ctx = StepContext(self, deployment, app)
        if deployment["cancel_requested"]:
            ctx.cancelled.set()
        with self._contexts_lock:
            self._contexts[deployment_id] = ctx
        try:
            if deployment["status"] == "pending":
                self._set_deployment(deployment_id, status="running", started_at="now()")
                self._emit("started", deployment_id)
            runs = {
                row["position"]: row
                for row in self.store.fetchall(
                    "SELECT position, status FROM step_runs WHERE deployment_id = ?", [deployment_id]
                )
            }
            done: list[tuple[int, Step]] = []
            for position, step in enumerate(steps):
                if runs.get(position, {}).get("status") == "succeeded":
                    done.append((position, step))
                    continue
                ctx.step_name, ctx.step_position = step.name, position
                error = self._run_step(ctx, position, step)
                if error is not None:
                    self._fail(ctx, steps, done, position, error)
                    return
                done.append((position, step))
            self._set_deployment(deployment_id, status="succeeded", finished_at="now()", error=None)
            self.journal_log(deployment_id, None, "deployment finished")
            self._emit("succeeded", deployment_id)
        finally:
            with self._contexts_lock:
                self._contexts.pop(deployment_id, None)

    def _run_step(self, ctx: StepContext, position: int, step: Step) -> LaunchdeckError | None:
        """Run one step with its retry policy and timeout; journal each attempt. None on success."""
        attempt = int(
            self.store.scalar(
                "SELECT attempts FROM step_runs WHERE deployment_id = ? AND position = ?",
                [ctx.deployment_id, position],
            )
            or 0
        )
        retries_left = step.retry.max_attempts
        while True:
            if ctx.cancelled.is_set():
                return Cancelled("the deployment was cancelled")
            attempt += 1
            retries_left -= 1
            self._set_step(
                ctx.deployment_id,
                position,
                status="running",
                attempts=attempt,
                started_at="now()",
                error=None,
            )
            self.journal_log(ctx.deployment_id, step.name, f"started (attempt {attempt})")
            started = time.monotonic()
            try:
                detail = self._call_with_timeout(ctx, step)
            except TransientError as exc:
                if retries_left > 0 and not ctx.cancelled.is_set():
                    delay = step.retry.delay(attempt, exc.retry_after)
                    self.journal_log(
                        ctx.deployment_id, step.name, f"transient error, retrying in {delay:.1f} s: {exc}"
                    )
                    self._set_step(ctx.deployment_id, position, status="pending", error=redact(str(exc)))
                    if ctx.cancelled.wait(delay):
                        return Cancelled("the deployment was cancelled")
                    continue
                return exc
            except LaunchdeckError as exc:
                return exc
            except Exception as exc:  # a bug or an unmapped library error: terminal, with its text
                log.exception("step %s raised", step.name)
                return LaunchdeckError(f"{type(exc).__name__}: {exc}")
            # Outputs go into the journal in the same transaction that marks the step done, so a
            # crash can never leave a succeeded step without the outputs later steps need.
            with self.store.transaction() as connection:
                connection.execute(
                    "UPDATE deployments SET state = ? WHERE id = ?",
                    [json.dumps(ctx.state), ctx.deployment_id],
                )
                connection.execute(
                    "UPDATE step_runs SET status = 'succeeded', finished_at = now(), detail = coalesce(?, detail)"
                    " WHERE deployment_id = ? AND position = ?",
                    [redact(detail) if detail else None, ctx.deployment_id, position],
                )
            self.journal_log(
                ctx.deployment_id,
                step.name,
                f"succeeded in {time.monotonic() - started:.1f} s" + (f": {detail}" if detail else ""),
            )
            return None

    @staticmethod
    def _call_with_timeout(ctx: StepContext, step: Step) -> str | None:
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["detail"] = step.run(ctx)
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=target, name=f"step-{step.name}", daemon=True)
        thread.start()
        thread.join(step.timeout)
        if thread.is_alive():
            ctx.cancelled.set()  # tell the step to stop; its own subprocesses watch this event
            # and stop the processes it started (a build), so its undo never runs beside them
            if kill_for_thread(thread.ident):  # its processes are gone: let it notice and return
                thread.join(STOP_GRACE_SECONDS)
            raise StepTimeout(f"step {step.name!r} did not finish within its timeout of {step.timeout:g} s")
        if "error" in outcome:
            raise outcome["error"]
        detail = outcome.get("detail")
        return str(detail) if detail is not None else None

    def _fail(
        self,
        ctx: StepContext,
        steps: list[Step],
        done: list[tuple[int, Step]],
        position: int,
        error: LaunchdeckError,
    ) -> None:
        cancelled = isinstance(error, Cancelled)
        message = redact(str(error))
        self._set_step(
            ctx.deployment_id,
            position,
            status="cancelled" if cancelled else "failed",
            finished_at="now()",
            error=message,
        )
        self.journal_log(
            ctx.deployment_id, steps[position].name, f"{'cancelled' if cancelled else 'failed'}: {message}"
        )
        for index in range(position + 1, len(steps)):
            self._set_step(ctx.deployment_id, index, status="skipped")
        # Undo what this run created, newest first: the failed step too, since it may have created
        # part of its resource before failing (undo functions tolerate "not there").
        to_undo = [(position, steps[position]), *reversed(done)]
        ctx.cancelled.clear()
        for undo_position, step in to_undo:
            if step.undo is None:
                continue
            ctx.step_name, ctx.step_position = step.name, undo_position
            try:
                step.undo(ctx)
            except Exception as exc:
                self.journal_log(
                    ctx.deployment_id, step.name, f"undo failed, clean up by hand: {redact(str(exc))}"
                )
                continue
            if undo_position != position:
                self._set_step(ctx.deployment_id, undo_position, status="undone")
            self.journal_log(ctx.deployment_id, step.name, "undone")
        self._set_deployment(
            ctx.deployment_id,
            status="cancelled" if cancelled else "failed",
            error=f"{steps[position].name}: {message}",
            finished_at="now()",
        )
        self._emit("cancelled" if cancelled else "failed", ctx.deployment_id)
