"""``/api/worker/...``: what a ``launchdeck worker`` process needs from the engine, and the only routes
a ``worker`` token may call. A worker never reads the engine's workspace: it gets a step's inputs here
and sends back its outputs as content-addressed blobs (only those the engine lacks)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from engine.api.deps import EngineDep, WorkerRole
from engine.api.models import ERRORS
from engine.errors import NotFound
from engine.temporal.blobs import BlobStore, check_digest, engine_blobs, pack_frames, receive_pack

router = APIRouter(tags=["workers"], responses=ERRORS)


class WorkerConfig(BaseModel):
    address: str | None = Field(description="Temporal's frontend, host:port")
    namespace: str
    queue_prefix: str = Field(description="this engine's task queues are <prefix>.<queue>")
    extra_pipelines: str = Field(description="pipeline plugin modules the worker loads too")
    blob_max_bytes: int


class WorkerApp(BaseModel):
    id: str
    name: str
    user_id: str


class WorkerDeployment(BaseModel):
    deployment_id: str
    pipeline: str
    params: dict[str, Any]
    state: dict[str, Any]
    cancel_requested: bool
    app: WorkerApp
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="what the engine computed for the step (on starting it only)"
    )


class Missing(BaseModel):
    missing: list[str] = Field(description="the digests the engine lacks")


class StoredBlob(BaseModel):
    digest: str
    stored: bool = Field(description="false when the engine had it already")
    bytes: int | None = None


def blobs(engine: Any) -> BlobStore:
    return engine_blobs(engine.settings.workspace)


@router.get("/api/worker/config", response_model=WorkerConfig)
def config(engine: EngineDep, principal: WorkerRole) -> dict[str, Any]:
    """Where Temporal is and which queues are this engine's; the pipeline modules to load."""
    runner = engine.runner
    runner.start()
    return {
        **runner.describe(),
        "extra_pipelines": engine.settings.extra_pipelines,
        "blob_max_bytes": engine.settings.worker_blob_max_bytes,
    }


def _deployment(engine: Any, deployment_id: str) -> dict[str, Any]:
    row = engine.store.fetchone("SELECT * FROM deployments WHERE id = ?", [deployment_id])
    if row is None:
        raise NotFound(f"no deployment {deployment_id}")
    return dict(row)


@router.get("/api/worker/deployments/{deployment_id}", response_model=WorkerDeployment)
def deployment(deployment_id: str, engine: EngineDep, principal: WorkerRole) -> dict[str, Any]:
    """What a step on a worker sees: the run's parameters and earlier steps' outputs."""
    row = _deployment(engine, deployment_id)
    app = engine.store.fetchone("SELECT id, name, user_id FROM deployed_apps WHERE id = ?", [row["app_id"]])
    if app is None:
        raise NotFound(f"the app of deployment {deployment_id} no longer exists")
    return {
        "deployment_id": deployment_id,
        "pipeline": row["pipeline"],
        "params": json.loads(row["params"]),
        "state": json.loads(row["state"] or "{}"),
        "cancel_requested": bool(row["cancel_requested"]),
        "app": {"id": str(app["id"]), "name": app["name"], "user_id": app["user_id"]},
    }


class Start(BaseModel):
    worker: str = Field(max_length=200, description="the worker's name, for the journal")


def _step_name(engine: Any, deployment_id: str, position: int) -> str:
    row = engine.store.fetchone(
        "SELECT name FROM step_runs WHERE deployment_id = ? AND position = ?", [deployment_id, position]
    )
    if row is None:
        raise NotFound(f"deployment {deployment_id} has no step {position}")
    return str(row["name"])


@router.post(
    "/api/worker/deployments/{deployment_id}/steps/{position}/start", response_model=WorkerDeployment
)
def start(
    deployment_id: str, position: int, body: Start, engine: EngineDep, principal: WorkerRole
) -> dict[str, Any]:
    """A worker starts an attempt of a step: the journal counts it, and the answer is the step's inputs
    (unless the run was cancelled meanwhile: then nothing is journaled and the worker stops)."""
    ctx, step = engine.runner.step_context(deployment_id, position)
    spec = {
        "deployment_id": deployment_id,
        "pipeline": ctx.pipeline,
        "params": ctx.params,
        "state": ctx.state,
        "cancel_requested": ctx.cancel_requested,
        "app": {"id": ctx.app_id, "name": ctx.app_name, "user_id": ctx.app.user_id},
    }
    if not ctx.cancel_requested:
        engine.runner.start_attempt(deployment_id, position, f"worker {body.worker}")
        if step.inputs is not None:
            spec["inputs"] = step.inputs(ctx)
    return spec


class LogLine(BaseModel):
    line: str = Field(max_length=20_000)


@router.post("/api/worker/deployments/{deployment_id}/steps/{position}/log", status_code=204)
def log_line(
    deployment_id: str, position: int, body: LogLine, engine: EngineDep, principal: WorkerRole
) -> None:
    engine.runner.journal_log(deployment_id, _step_name(engine, deployment_id, position), body.line)


class Progress(BaseModel):
    done: int
    total: int | None = None
    unit: str = Field(max_length=40)
    detail: str | None = Field(default=None, max_length=2000)


@router.post("/api/worker/deployments/{deployment_id}/steps/{position}/progress", status_code=204)
def progress(
    deployment_id: str, position: int, body: Progress, engine: EngineDep, principal: WorkerRole
) -> None:
    engine.store.execute(
        "UPDATE step_runs SET progress_done = ?, progress_total = ?, progress_unit = ?,"
        " detail = coalesce(?, detail) WHERE deployment_id = ? AND position = ?",
        [body.done, body.total, body.unit, body.detail, deployment_id, position],
    )


class Digests(BaseModel):
    digests: list[str] = Field(max_length=100_000)


@router.post("/api/worker/blob-check", response_model=Missing)
def missing(body: Digests, engine: EngineDep, principal: WorkerRole) -> dict[str, list[str]]:
    """Which of these blobs the engine lacks: the worker sends only those."""
    return {"missing": blobs(engine).missing([check_digest(d) for d in body.digests])}


class StoredPack(BaseModel):
    stored: int = Field(description="blobs in the pack")


@router.put("/api/worker/blobs/pack", status_code=201, response_model=StoredPack)
async def put_pack(request: Request, engine: EngineDep, principal: WorkerRole) -> dict[str, int]:
    """Many blobs in one body, each framed as ``<sha256> <size>\n`` and its bytes; each is kept only when
    its SHA-256 is the one named, and none may pass LAUNCHDECK_WORKER_BLOB_MAX_BYTES."""
    stored = await receive_pack(blobs(engine), request.stream(), engine.settings.worker_blob_max_bytes)
    return {"stored": stored}


@router.post(
    "/api/worker/blobs/fetch",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
def fetch_pack(body: Digests, engine: EngineDep, principal: WorkerRole) -> StreamingResponse:
    """These blobs as one pack (the format ``PUT /api/worker/blobs/pack`` takes)."""
    store = blobs(engine)
    paths = {digest: store.open(check_digest(digest)) for digest in dict.fromkeys(body.digests)}
    return StreamingResponse(pack_frames(paths), media_type="application/octet-stream")


@router.put("/api/worker/blobs/{digest}", status_code=201, response_model=StoredBlob)
async def put_blob(digest: str, request: Request, engine: EngineDep, principal: WorkerRole) -> dict[str, Any]:
    """A blob as the raw body, streamed to disk under LAUNCHDECK_WORKER_BLOB_MAX_BYTES, kept only when
    its SHA-256 is the one named."""
    store = blobs(engine)
    if store.has(digest):
        return {"digest": digest, "stored": False}
    size = await store.receive(digest, request.stream(), engine.settings.worker_blob_max_bytes)
    return {"digest": digest, "stored": True, "bytes": size}


@router.get(
    "/api/worker/blobs/{digest}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
def get_blob(digest: str, engine: EngineDep, principal: WorkerRole) -> FileResponse:
    return FileResponse(blobs(engine).open(digest), media_type="application/octet-stream")
