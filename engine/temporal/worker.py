"""``launchdeck worker``: serves the ``build`` and ``import`` task queues, on this machine or another.

A worker never opens the engine's workspace or store. It learns where Temporal is from the engine
(``GET /api/worker/config``, with a ``worker`` token), gets each step's inputs through the API, runs the
step in a working folder of its own, and sends back what the step produced as content-addressed blobs.
Steps see a ``WorkerContext``: the same names as the engine's ``StepContext`` (params, state, log,
progress, cancelled, resource_name) plus ``workdir``, ``api``, ``inputs`` (what the engine computed for
the step: ``Step.inputs``), ``upload``/``download`` and ``send_tree``/``fetch_tree`` (folders as blobs;
the worker keeps a cache of the blobs it has). Besides the shared queues, each worker serves a queue of
its own, ``<prefix>.machine.<name>``, for steps that must run where an earlier one ran, and for undo.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from engine.errors import Cancelled, ConfigError, LaunchdeckError, TransientError
from engine.files import discard_in_background
from engine.procs import tracked
from engine.redact import redact
from engine.retry import poll_until
from engine.runner import Step
from engine.temporal import WORKER_QUEUES, queue_name
from engine.temporal.activities import application_error, run_heartbeating, step_error
from engine.temporal.blobs import (
    BlobStore,
    file_digest,
    manifest_bytes,
    pack_frames,
    read_manifest,
    read_pack,
    tree_manifest,
    write_tree,
)
from engine.temporal.runner import connect

log = logging.getLogger("launchdeck.worker")
CACHE_DAYS = 7


class EngineApi:
    """The engine's ``/api/worker/`` routes, with the worker's token."""

    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(60.0, connect=10.0),
            trust_env=False,
        )

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.client.post(path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def upload(self, paths: Sequence[Path]) -> dict[str, str]:
        """Send files as blobs, only those the engine lacks; returns {str(path): digest}."""
        digests = {str(path): file_digest(path) for path in paths}
        self.send_blobs({digest: Path(path) for path, digest in digests.items()})
        return digests

    def send_blobs(self, files: dict[str, Path]) -> None:
        """Send the files of ``{digest: path}`` that the engine lacks."""
        missing: set[str] = set()
        for batch in batches(sorted(files)):
            missing.update(self.post("/api/worker/blob-check", {"digests": batch})["missing"])
        sending = {digest: path for digest, path in files.items() if digest in missing}
        if sending:  # one request for them all
            response = self.client.put(
                "/api/worker/blobs/pack",
                content=pack_frames(sending),
                headers={"Content-Type": "application/octet-stream"},
                timeout=httpx.Timeout(600.0, connect=10.0),
            )
            response.raise_for_status()

    def download(self, digest: str, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.client.stream("GET", f"/api/worker/blobs/{digest}") as response:
            response.raise_for_status()
            with target.open("wb") as handle:
                for chunk in response.iter_bytes(1 << 20):
                    handle.write(chunk)
        return target

    def cached(self, digest: str, cache: BlobStore) -> Path:
        """A blob from this worker's own cache, fetched from the engine only when the cache lacks it."""
        target = cache.path(digest)
        if not target.is_file():
            partial = target.with_name(f".{digest}.{os.getpid()}.{threading.get_ident()}.part")
            try:
                if file_digest(self.download(digest, partial)) != digest:
                    raise TransientError(f"blob {digest} arrived damaged")
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        return target

    def fetch_tree(self, manifest_digest: str, root: Path, cache: BlobStore) -> int:
        """Write the tree a manifest blob names under ``root``, fetching only the blobs not in ``cache``
        (copies, not links: the build may change its working copy, never the cache). Returns the files
        fetched from the engine."""
        manifest = read_manifest(self.cached(manifest_digest, cache).read_bytes())
        lacking = cache.missing(sorted({digest for digest, _ in manifest["files"].values()}))
        for batch in batches(lacking):  # one request per few thousand blobs
            with self.client.stream(
                "POST",
                "/api/worker/blobs/fetch",
                json={"digests": batch},
                timeout=httpx.Timeout(600.0, connect=10.0),
            ) as response:
                response.raise_for_status()
                read_pack(response.iter_bytes(1 << 20), cache)
        write_tree(manifest, root, lambda digest, target: shutil.copyfile(cache.path(digest), target))
        return len(lacking)

    def send_tree(self, root: Path, scratch: Path, skip: Callable[[str], bool] = lambda _: False) -> str:
        """Send a folder as blobs (only those the engine lacks) and its manifest; the manifest's digest."""
        paths: dict[str, Path] = {}

        def digest_of(path: Path) -> str:
            digest = file_digest(path)
            paths.setdefault(digest, path)
            return digest

        manifest = tree_manifest(root, digest_of, skip)
        scratch.mkdir(parents=True, exist_ok=True)
        manifest_file = scratch / "manifest.json"
        manifest_file.write_bytes(manifest_bytes(manifest))
        self.send_blobs(paths)  # the manifest last: it names only blobs the engine has
        return self.upload([manifest_file])[str(manifest_file)]


# Digests per request: a list of them is JSON of ~70 bytes each, and a request body is at most
# LAUNCHDECK_REQUEST_MAX_BYTES (1 MB by default); a standalone server can hold tens of thousands of files.
DIGESTS_PER_REQUEST = 5_000


def batches(digests: list[str]) -> list[list[str]]:
    return [
        digests[start : start + DIGESTS_PER_REQUEST] for start in range(0, len(digests), DIGESTS_PER_REQUEST)
    ]


class WorkerContext:
    """What a step running on a worker sees."""

    services = None  # no engine here: a worker step reaches the engine only through ``api``

    def __init__(
        self,
        api: EngineApi,
        spec: dict[str, Any],
        position: int,
        step: Step,
        workdir: Path,
        worker: tuple[str, str],
    ) -> None:
        self.api = api
        self.worker_name, self.machine = worker  # this worker's name and own task queue
        self.inputs: dict[str, Any] = spec.get("inputs") or {}  # what the engine computed for the step
        # The worker's folder: blobs it has (``cache``), and per-app caches beside ``deployments``.
        self.worker_dir = workdir.parent.parent
        self.cache = BlobStore(self.worker_dir / "blobs")
        self.deployment_id: str = spec["deployment_id"]
        self.app: dict[str, Any] = spec["app"]
        self.params: dict[str, Any] = spec["params"]
        self.state: dict[str, Any] = spec["state"]
        self.started_state: dict[str, Any] = copy.deepcopy(spec["state"])  # to tell what the step set
        self.step_name: str | None = step.name
        self.step_position = position
        self.workdir = workdir
        self.cancelled = threading.Event()
        self._last_progress = 0.0

    @property
    def app_id(self) -> str:
        return str(self.app["id"])

    @property
    def app_name(self) -> str:
        return str(self.app["name"])

    def _step_path(self, what: str) -> str:
        return f"/api/worker/deployments/{self.deployment_id}/steps/{self.step_position}/{what}"

    def resource_name(self, kind: str) -> str:
        return f"{self.app_name}-{self.deployment_id[:8]}-{kind}"

    def log(self, line: str) -> None:
        self.api.post(self._step_path("log"), {"line": redact(line)[:20_000]})

    def progress(self, done: int, total: int | None, unit: str, detail: str | None = None) -> None:
        now = time.monotonic()
        if total is not None and done < total and now - self._last_progress < 0.25:
            return
        self._last_progress = now
        self.api.post(
            self._step_path("progress"), {"done": done, "total": total, "unit": unit, "detail": detail}
        )

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("the deployment was cancelled")

    def upload(self, paths: Sequence[Path]) -> dict[str, str]:
        return self.api.upload(paths)

    def download(self, digest: str, target: Path) -> Path:
        return self.api.download(digest, target)

    def fetch_tree(self, manifest_digest: str, root: Path) -> int:
        return self.api.fetch_tree(manifest_digest, root, self.cache)

    def send_tree(self, root: Path, skip: Callable[[str], bool] = lambda _: False) -> str:
        return self.api.send_tree(root, self.workdir / "sent", skip)


def _config(api: EngineApi) -> dict[str, Any] | None:
    """The engine's worker configuration; None while it does not listen yet (started before it)."""
    try:
        return dict(api.get("/api/worker/config"))
    except httpx.TransportError:
        return None


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the worker dies, so a lost worker leaves no build behind
    to race the retry on another worker."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_process(ctx: Any, command: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> int:
    """Run a command in its own process group; when the step is cancelled (or times out), the whole
    group is stopped: SIGTERM, then SIGKILL two seconds later. Returns the exit code."""
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    try:
        with tracked(process.pid):
            _wait_or_stop(ctx, process)
        return int(process.returncode)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_or_stop(ctx: Any, process: subprocess.Popen[bytes]) -> None:
    while process.poll() is None:
        if ctx.cancelled.wait(0.1):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            raise Cancelled("the deployment was cancelled: its process group was stopped")


class WorkerActivities:
    def __init__(self, api: EngineApi, workdir: Path, name: str, extra_pipelines: str, machine: str) -> None:
        from pipelines import registry

        self.api, self.workdir, self.name, self.machine = api, workdir, name, machine
        self.pipelines = registry(extra_pipelines)

    def _prepare(self, call: dict[str, Any], start: bool = False) -> tuple[WorkerContext, Step]:
        """The step's inputs; with ``start``, the engine also journals the attempt (one round trip)."""
        deployment_id, position = call["deployment_id"], int(call["position"])
        if start:
            spec = self.api.post(
                f"/api/worker/deployments/{deployment_id}/steps/{position}/start", {"worker": self.name}
            )
            if spec["cancel_requested"]:
                raise Cancelled("the deployment was cancelled")
        else:
            spec = self.api.get(f"/api/worker/deployments/{deployment_id}")
        step = self.pipelines[spec["pipeline"]](spec["params"])[position]
        workdir = self.workdir / "deployments" / deployment_id
        workdir.mkdir(parents=True, exist_ok=True)
        return WorkerContext(self.api, spec, position, step, workdir, (self.name, self.machine)), step

    @activity.defn(name="run_remote_step")
    async def run_remote_step(self, call: dict[str, Any]) -> dict[str, Any]:
        info = activity.info()
        try:
            ctx, step = await asyncio.to_thread(self._prepare, call, True)
        except Cancelled as exc:
            raise self._failure(application_error(exc)) from None
        started = time.monotonic()

        def run() -> Any:
            return step.run(ctx)

        try:
            detail = await run_heartbeating(run, ctx.cancelled, step.timeout, step.name)
        except asyncio.CancelledError:
            raise
        except ApplicationError as failure:
            raise self._failure(failure) from None
        except BaseException as exc:
            if not isinstance(exc, LaunchdeckError):
                log.exception("step %s raised", step.name)
            error = step_error(exc, info.attempt, step.retry.max_attempts, ctx.cancelled.is_set())
            if error.type == "Transient" and not error.non_retryable:
                with contextlib.suppress(httpx.HTTPError):
                    ctx.log(f"transient error, retrying: {error.message}")
            raise self._failure(error) from None
        # The outputs go back with the activity's result (the workflow journals them on the engine before
        # any later step starts): no request of its own, and a step that finished while the engine's API
        # was away is not run again for it. Only the keys the step set: the rest is in the run already.
        outputs = {
            "detail": redact(str(detail))[:20_000] if detail is not None else None,
            "state": {
                key: value
                for key, value in ctx.state.items()
                if key not in ctx.started_state or ctx.started_state[key] != value
            },
            "seconds": time.monotonic() - started,
        }
        # Later steps that need this machine (and the undo) go to its queue.
        return {"machine": self.machine, "outputs": outputs}

    def _failure(self, error: ApplicationError) -> ApplicationError:
        """The error, saying which worker it happened on: the step's undo runs there."""
        return ApplicationError(
            error.message,
            {"machine": self.machine},
            type=error.type,
            non_retryable=error.non_retryable,
            next_retry_delay=error.next_retry_delay,
        )

    @activity.defn(name="undo_remote_step")
    async def undo_remote_step(self, call: dict[str, Any]) -> None:
        ctx, step = await asyncio.to_thread(self._prepare, call)
        if step.undo is None:
            return
        try:
            await asyncio.to_thread(step.undo, ctx)
        except Exception as exc:
            raise application_error(exc) from None


async def serve(
    engine_url: str,
    token: str,
    *,
    queues: Sequence[str] = WORKER_QUEUES,
    workdir: Path,
    concurrency: int = 2,
    name: str | None = None,
    temporal_address: str | None = None,
    ready: threading.Event | None = None,
    client: Client | None = None,
    quiet: bool = False,
) -> None:
    """Serve ``queues`` until cancelled (SIGTERM / Ctrl-C in the command). ``client``: a Temporal
    client to use (the engine's, for its local worker)."""
    api = EngineApi(engine_url, token)
    config = await asyncio.to_thread(
        poll_until,
        lambda: _config(api),
        lambda found: found is not None,
        interval=0.1,
        max_interval=2.0,
        timeout=60,
        timed_out=lambda _: ConfigError(f"the engine at {engine_url} does not answer"),
    )
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    BlobStore(workdir / "blobs").prune(CACHE_DAYS * 86400)  # working copies' files not needed for a while
    for leftover in (workdir / "trash").glob("*"):  # deletions an earlier worker left unfinished
        discard_in_background(leftover)
    if client is None:
        client = await connect(temporal_address or config["address"], config["namespace"])
    # This worker's own queue: steps that must run where an earlier one ran (what it left in this folder).
    machine = queue_name(config["queue_prefix"], f"machine.{name}")
    activities = WorkerActivities(api, workdir, name, config["extra_pipelines"], machine)
    workers = [
        Worker(
            client,
            task_queue=queue,
            activities=[activities.run_remote_step, activities.undo_remote_step],
            identity=name,
            max_concurrent_activities=concurrency,
            default_heartbeat_throttle_interval=timedelta(seconds=1),
            max_heartbeat_throttle_interval=timedelta(seconds=1),
            graceful_shutdown_timeout=timedelta(seconds=5),
        )
        for queue in [*(queue_name(config["queue_prefix"], q) for q in queues), machine]
    ]
    log.info(
        "worker %s serving %s (%s.*) for %s", name, ", ".join(queues), config["queue_prefix"], engine_url
    )
    if ready is not None:
        ready.set()
    if not quiet:
        print(f"worker {name} serving {', '.join(queues)} for {engine_url}", flush=True)
    runs = [asyncio.ensure_future(worker.run()) for worker in workers]
    try:
        done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION)
        for run in done:
            run.result()  # a worker's fatal error
    finally:
        # Stopped explicitly, not by cancelling Worker.run: a cancelled run leaves its coroutine
        # unfinished, and Python reports it (an unraisable exception) when it is collected.
        for worker in workers:
            with contextlib.suppress(Exception):
                await worker.shutdown()
        await asyncio.gather(*runs, return_exceptions=True)
