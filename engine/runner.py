"""What every part of the pipeline runner shares: ``Step``, ``RetryPolicy``, ``StepContext``, and
``Runner``, the journal and submission of runs, which ``engine.temporal.runner.TemporalRunner`` (the
engine's runner) builds on to run them on Temporal.

A pipeline is a list of steps. Every state change is journaled in the store (``deployments``,
``step_runs``, ``deployment_log``): the console and the API show what the journal says. A step names
every resource it creates after the app and deployment (``ctx.resource_name``) and adopts what it finds,
so a step run again (its worker or the engine died) never creates anything twice.

A step that fails terminally (or exhausts its retries, or passes its timeout, or is cancelled) fails
the run: the steps that succeeded are undone in reverse order, and the app's live deployment, which only
a final promote step changes, stays as it was.
"""

from __future__ import annotations

import abc
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Cancelled, LockTimeout, NotFound
from engine.records import App
from engine.redact import redact
from engine.retry import RetryPolicy
from engine.store import Store

log = logging.getLogger("launchdeck.runner")

ACTIVE = ("pending", "running")
FINISHED = ("succeeded", "failed", "cancelled")


NO_RETRY = RetryPolicy(max_attempts=1)


class StepContext:
    """What a step sees: its parameters, earlier steps' outputs, and ways to report."""

    def __init__(self, runner: Runner, deployment: dict[str, Any], app: Mapping[str, Any]) -> None:
        self._runner = runner
        self.deployment_id: str = str(deployment["id"])
        self.pipeline: str = str(deployment["pipeline"])
        self.app = App.model_validate(app)  # its record as the run starts
        self.params: dict[str, Any] = json.loads(deployment["params"])
        self.state: dict[str, Any] = json.loads(deployment["state"] or "{}")
        self.cancelled = threading.Event()
        # A cancel journaled before this context was made (``cancelled`` is for one that comes later):
        # a run does not start its step; an undo still runs.
        self.cancel_requested = bool(deployment.get("cancel_requested"))
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


def merge_state(connection: Any, deployment_id: str, state: dict[str, Any]) -> None:
    """Add a step's outputs to the run's state (in the caller's transaction). Merged, not replaced: a
    step that ran beside this one may have recorded its own outputs since this one read the state; steps
    of one run write different keys."""
    row = connection.execute("SELECT state FROM deployments WHERE id = ?", [deployment_id]).fetchone()
    merged = {**json.loads((row[0] if row else None) or "{}"), **state}
    connection.execute("UPDATE deployments SET state = ? WHERE id = ?", [json.dumps(merged), deployment_id])


PipelineFactory = Callable[[dict[str, Any]], list[Step]]
Listener = Callable[[str, dict[str, Any]], None]


class Runner(abc.ABC):
    """The journal and the submission of runs; ``engine.temporal.runner.TemporalRunner`` runs them."""

    def __init__(
        self,
        store: Store,
        pipelines: dict[str, PipelineFactory],
        *,
        services: Any = None,
    ) -> None:
        self.store = store
        self.pipelines = pipelines
        self.services = services
        self._contexts: dict[str, StepContext] = {}
        self._contexts_lock = threading.Lock()
        self._listeners: list[Listener] = []

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

    def journal_log(self, deployment_id: str, step: str | None, line: str, connection: Any = None) -> None:
        """A line of the run's log; with ``connection``, in the caller's transaction."""
        line = redact(line)
        log.info("[%s] %s: %s", deployment_id[:8], step or "-", line)
        sql = "INSERT INTO deployment_log (deployment_id, step, line) VALUES (?, ?, ?)"
        if connection is None:
            self.store.execute(sql, [deployment_id, step, line])
        else:
            connection.execute(sql, [deployment_id, step, line])

    def start_attempt(self, deployment_id: str, position: int, where: str = "") -> int:
        """Journal an attempt of a step (one transaction); returns its number. Counted in the store, not
        from Temporal's attempt number, which starts again at 1 when a local activity is re-run after
        its engine died."""
        with self.store.transaction() as connection:
            row = connection.execute(
                "UPDATE step_runs SET status = 'running', attempts = coalesce(attempts, 0) + 1,"
                " started_at = now(), error = NULL WHERE deployment_id = ? AND position = ?"
                " RETURNING attempts, name",
                [deployment_id, position],
            ).fetchone()
            if row is None:
                raise NotFound(f"deployment {deployment_id} has no step {position}")
            attempt, name = int(row[0]), str(row[1])
            started = f"started (attempt {attempt})" + (f" on {where}" if where else "")
            self.journal_log(deployment_id, name, started, connection)
        return attempt

    def record_success(
        self, deployment_id: str, position: int, detail: str | None, state: dict[str, Any], seconds: float
    ) -> None:
        """A step's outputs and its success in one transaction: a later step never misses an output."""
        with self.store.transaction() as connection:
            merge_state(connection, deployment_id, state)
            row = connection.execute(
                "UPDATE step_runs SET status = 'succeeded', finished_at = now(), detail = coalesce(?, detail)"
                " WHERE deployment_id = ? AND position = ? RETURNING name",
                [redact(detail) if detail else None, deployment_id, position],
            ).fetchone()
            if row is None:
                raise NotFound(f"deployment {deployment_id} has no step {position}")
            succeeded = f"succeeded in {seconds:.1f} s" + (f": {detail}" if detail else "")
            self.journal_log(deployment_id, str(row[0]), succeeded, connection)

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

    def step_context(self, deployment_id: str, position: int) -> tuple[StepContext, Step]:
        """A step's context on the engine, as its run, undo or ``inputs`` (for a worker) see it."""
        deployment = self.store.fetchone("SELECT * FROM deployments WHERE id = ?", [deployment_id])
        if deployment is None:
            raise NotFound(f"no deployment {deployment_id}")
        app = self.store.fetchone("SELECT * FROM deployed_apps WHERE id = ?", [deployment["app_id"]])
        if app is None:
            raise NotFound(f"the app of deployment {deployment_id} no longer exists")
        steps = self.pipelines[deployment["pipeline"]](json.loads(deployment["params"]))
        if not 0 <= position < len(steps):
            raise NotFound(f"deployment {deployment_id} has no step {position}")
        ctx = StepContext(self, deployment, app)
        ctx.step_name, ctx.step_position = steps[position].name, position
        return ctx, steps[position]

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

    @abc.abstractmethod
    def _start(self, deployment_id: str, pipeline: str, params: dict[str, Any]) -> None:
        """Start a journaled run (``TemporalRunner``: its workflow)."""

    # A step's context while it runs, keyed by deployment and step (steps of one run may run side by
    # side): a cancel reaches it at once.
    def _track(self, ctx: StepContext) -> None:
        with self._contexts_lock:
            self._contexts[f"{ctx.deployment_id}:{ctx.step_position}"] = ctx

    def _untrack(self, ctx: StepContext) -> None:
        with self._contexts_lock:
            self._contexts.pop(f"{ctx.deployment_id}:{ctx.step_position}", None)

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
