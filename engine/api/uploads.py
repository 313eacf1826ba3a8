"""``POST /api/uploads``: an app (.tar.gz or .zip) or a preview database (SQLite file or SQL dump) as
the raw request body, streamed to disk under the size limit. Answers an ``upload_id`` and the body's
digest; deploy routes name the upload by its id."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from engine import uploads
from engine.api.deps import Deployer, EngineDep
from engine.api.models import ERRORS, UploadInfo
from engine.apps import audit

router = APIRouter(tags=["uploads"], responses=ERRORS)

BODY = {
    "requestBody": {
        "required": True,
        "description": "the archive or database file itself, as the body",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/gzip": {"schema": {"type": "string", "format": "binary"}},
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post("/api/uploads", status_code=201, response_model=UploadInfo, openapi_extra=BODY)
async def upload(
    request: Request,
    engine: EngineDep,
    principal: Deployer,
    kind: Literal["app", "preview"] = Query(
        default="app", description="app: a .tar.gz or .zip of the app's folder; preview: its preview database"
    ),
) -> dict[str, Any]:
    settings = engine.settings
    limits = uploads.Limits(
        body_bytes=settings.upload_max_bytes,
        unpacked_bytes=settings.upload_max_unpacked_bytes,
        files=settings.upload_max_files,
    )
    stored = await uploads.receive(
        engine.store, settings.workspace, request.stream(), owner=principal.name, kind=kind, limits=limits
    )
    audit(engine.store, principal.actor, "upload", stored.id, {"kind": kind, "digest": stored.digest})
    return stored.public()


@router.get("/api/uploads", response_model=list[UploadInfo])
def list_uploads(engine: EngineDep, principal: Deployer) -> list[dict[str, Any]]:
    """The caller's uploads, newest first (operators: everyone's)."""
    owners = None if principal.role == "operator" else [principal.name]
    return [u.public() for u in uploads.list_uploads(engine.store, owners)]
