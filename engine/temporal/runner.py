"""``TemporalRunner``: the engine's pipeline runner, on Temporal.

The store keeps what the console and the API show (deployments, step runs, timings, logs), written by
the control activities as the workflow reports; the workflow's history in Temporal is what makes a run
durable: an engine that was killed finds its runs where they were when it starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from engine.errors import ConfigError, NotFound
from engine.runner import ACTIVE, PipelineFactory, Runner
from engine.store import Store
from engine.temporal import CONTROL, queue_name
from engine.temporal.activities import ControlActivities
from engine.temporal.server import DevServer
from engine.temporal.workflow import PipelineWorkflow

if TYPE_CHECKING:
    from engine.config import Settings

log = logging.getLogger("launchdeck.temporal")
T = TypeVar("T")
HEARTBEAT_THROTTLE = timedelta(seconds=1)  # a cancel reaches a running step within about a second


def queue_prefix(settings: Settings) -> str:
    """Task queues are per engine (per workspace), so engines, and tests, can share one Temporal."""
    if settings.temporal_queue_prefix:
        return settings.temporal_queue_prefix
    return "ld-" + hashlib.sha256(str(settings.workspace.resolve()).encode()).hexdigest()[:12]


async def connect(address: str, namespace: str, timeout: float = 30.0) -> Client:
    """A client, once Temporal's frontend says it is healthy (a new server listens before it is)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await Client.connect(address, namespace=namespace)
        except RuntimeError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise ConfigError(
                    f"Temporal at {address} (LAUNCHDECK_TEMPORAL_ADDRESS) does not answer: {exc}"
                ) from None
            await asyncio.sleep(0.2)


class TemporalRunner(Runner):
    def __init__(
        self, store: Store, pipelines: dict[str, PipelineFactory], *, settings: Settings, services: Any = None
    ) -> None:
        super().__init__(store, pipelines, services=services)
        self.settings = settings
        self.prefix = queue_prefix(settings)
        self.namespace = settings.temporal_namespace
        self.address: str | None = None
        self._server: DevServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None
        self._worker: Worker | None = None
        self._start_lock = threading.Lock()
        self._loop_thread: threading.Thread | None = None
        self._attached: list[asyncio.Task[Any]] = []

    # -- Temporal connection ----------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self) -> None:
        """Connect (starting the embedded server when no address is set) and serve the control queue."""
        with self._start_lock:
            if self._client is not None:
                return
            address = self.settings.temporal_address
            if not address:
                workspace = self.settings.workspace
                (workspace / "logs").mkdir(parents=True, exist_ok=True)
                self._server = DevServer(
                    workspace / "temporal" / "temporal.db", workspace / "logs" / "temporal.log"
                )
                address = self._server.start()
            self.address = address
            # A step's failure is journaled with its message; the SDK's traceback per failed attempt is noise.
            logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
            loop = asyncio.new_event_loop()
            loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="control"))
            self._loop_thread = threading.Thread(target=loop.run_forever, name="temporal", daemon=True)
            self._loop_thread.start()
            self._loop = loop
            try:
                self._client = self._call(self._connect(address))
            except BaseException:
                self.shutdown()
                raise
            log.info(
                "pipelines on Temporal at %s (namespace %s, queues %s.*)",
                address,
                self.namespace,
                self.prefix,
            )

    async def _connect(self, address: str) -> Client:
        client = await connect(address, self.namespace)
        self._worker = Worker(
            client,
            task_queue=queue_name(self.prefix, CONTROL),
            workflows=[PipelineWorkflow],
            activities=ControlActivities(self).all(),
            # The workflow only orders activities and imports nothing else: no sandbox, faster start.
            workflow_runner=UnsandboxedWorkflowRunner(),
            max_concurrent_activities=max(8, self.settings.workers * 4),
            default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
            max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
            graceful_shutdown_timeout=timedelta(seconds=5),
        )
        asyncio.get_running_loop().create_task(self._worker.run())
        return client

    def attach(self, serve: Callable[[Client], Coroutine[Any, Any, Any]]) -> None:
        """Run ``serve(client)`` on this runner's loop until shutdown (the engine's local worker)."""
        self.start()
        assert self._client is not None
        self._attached.append(self._call(self._spawn(serve(self._client))))

    @staticmethod
    async def _spawn(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return asyncio.get_running_loop().create_task(coroutine)

    async def _stop_attached(self) -> None:
        for task in self._attached:
            task.cancel()
        await asyncio.gather(*self._attached, return_exceptions=True)

    # -- Runner interface -------------------------------------------------------------------------

    def _start(self, deployment_id: str, pipeline: str, params: dict[str, Any]) -> None:
        self.start()
        self._call(self._start_workflow(deployment_id))

    async def _start_workflow(self, deployment_id: str) -> None:
        assert self._client is not None
        with contextlib.suppress(WorkflowAlreadyStartedError):  # resumed: its history carries on
            await self._client.start_workflow(
                PipelineWorkflow.run,
                {"deployment_id": deployment_id, "prefix": self.prefix},
                id=deployment_id,
                task_queue=queue_name(self.prefix, CONTROL),
            )

    def resume_unfinished(self) -> list[str]:
        """Start the workflow of any journaled run Temporal does not know (its engine died between the
        two); runs Temporal knows carry on by themselves once this engine serves the control queue."""
        self.start()
        rows = self.store.fetchall(
            "SELECT id FROM deployments WHERE status IN ('pending', 'running') ORDER BY created_at"
        )
        for row in rows:
            self._call(self._start_workflow(str(row["id"])))
        return [str(row["id"]) for row in rows]

    def cancel(self, deployment_id: str) -> bool:
        row = self.store.fetchone("SELECT status FROM deployments WHERE id = ?", [deployment_id])
        if row is None:
            raise NotFound(f"no deployment {deployment_id}")
        if row["status"] not in ACTIVE:
            return False
        self._set_deployment(deployment_id, cancel_requested=True)
        with self._contexts_lock:
            running = [ctx for key, ctx in self._contexts.items() if key.startswith(f"{deployment_id}:")]
        for ctx in running:
            ctx.cancelled.set()
        self.start()
        try:
            self._call(self._signal_cancel(deployment_id))
        except RPCError as exc:  # finished meanwhile
            log.info("cancel of %s: %s", deployment_id, exc)
        return True

    async def _signal_cancel(self, deployment_id: str) -> None:
        assert self._client is not None
        await self._client.get_workflow_handle(deployment_id).signal(PipelineWorkflow.cancel)

    def shutdown(self) -> None:
        """Stop serving the control queue; steps still running are cancelled and retried by the next
        engine (their workflows stay in Temporal). Then stop the embedded server."""
        if self._loop is not None and self._worker is not None:
            try:
                self._call(self._stop_attached(), timeout=30)
            except Exception:
                log.exception("stopping the local worker")
            try:
                self._call(self._worker.shutdown(), timeout=30)
            except Exception:
                log.exception("stopping the Temporal worker")
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
            if not self._loop.is_running():
                self._loop.close()
        if self._server is not None:
            self._server.stop()

    def describe(self) -> dict[str, Any]:
        return {"address": self.address, "namespace": self.namespace, "queue_prefix": self.prefix}
