"""POST /api/uploads against a real engine: good archives are unpacked once per content, hostile ones
are refused with a message naming what is wrong, and a refusal leaves nothing behind."""

from __future__ import annotations

import gzip
import io
import json
import socket
import sqlite3
import stat
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from engine.service import Engine
from tests.api.conftest import UNPACKED_LIMIT, UPLOAD_LIMIT, platform_token, workspace_of


def tar_gz(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


PACKAGE = ("package.json", b'{"name": "tiny", "scripts": {"build": "true"}}')


def upload(http: httpx.Client, headers: dict[str, str], body: bytes, kind: str = "app") -> httpx.Response:
    return http.post("/api/uploads", params={"kind": kind}, content=body, headers=headers)


def leftovers(engine: Engine) -> list[str]:
    """Everything under uploads/ but the finished contents: temporary bodies and half-unpacked trees."""
    incoming = workspace_of(engine) / "uploads" / "incoming"
    return sorted(str(p.relative_to(incoming)) for p in incoming.rglob("*")) if incoming.exists() else []


def stored_apps(engine: Engine) -> set[str]:
    folder = workspace_of(engine) / "uploads" / "app"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_an_app_archive_is_stored_once_and_named_by_its_digest(engine: Engine, http: httpx.Client) -> None:
    token = platform_token(engine, "uploader")
    body = tar_gz(
        [PACKAGE, ("app/page.tsx", b"export default () => null\n"), link("current", "app/page.tsx")]
    )
    first = upload(http, token, body)
    assert first.status_code == 201, first.text
    again = upload(http, token, body)
    info = first.json()
    assert again.json()["upload_id"] == info["upload_id"] and info["digest"].startswith("sha256:")
    digest = info["digest"].removeprefix("sha256:")
    tree = workspace_of(engine) / "uploads" / "app" / digest
    assert (tree / "package.json").is_file() and (tree / "current").is_symlink()  # a link inside is kept
    # Another platform sending the same bytes gets its own id; the content is still stored once.
    other = upload(http, platform_token(engine, "other-uploader"), body).json()
    assert other["upload_id"] != info["upload_id"] and other["digest"] == info["digest"]
    assert sum(1 for name in stored_apps(engine) if name == digest) == 1
    assert engine.store.scalar("SELECT count(*) FROM uploads WHERE digest = ?", [digest]) == 2


def test_a_zip_in_one_top_level_folder_is_accepted(engine: Engine, http: httpx.Client) -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("tiny/package.json", PACKAGE[1])
        archive.writestr("tiny/prisma/schema.prisma", "generator client {}\n")
    response = upload(http, platform_token(engine, "zipper"), raw.getvalue())
    assert response.status_code == 201, response.text
    tree = workspace_of(engine) / "uploads" / "app" / response.json()["digest"].removeprefix("sha256:")
    assert (tree / "prisma" / "schema.prisma").is_file()


def device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


def zip_symlink_out() -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("package.json", PACKAGE[1])
        info = zipfile.ZipInfo("leak")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "../../../vault.key")
    return raw.getvalue()


def zip_bomb() -> bytes:
    """Unpacks to 4x the limit from a body far under the upload limit."""
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("package.json", PACKAGE[1])
        for index in range(4):
            archive.writestr(f"zeros-{index}.bin", b"\0" * UNPACKED_LIMIT)
    body = raw.getvalue()
    assert len(body) < UPLOAD_LIMIT / 10
    return body


def gzip_bomb() -> bytes:
    return tar_gz([PACKAGE, ("zeros.bin", b"\0" * (UNPACKED_LIMIT + 1))])


HOSTILE = {
    "dot-dot": (tar_gz([PACKAGE, ("../escape.txt", b"x")]), 422, "outside the app folder (..)"),
    "absolute": (tar_gz([PACKAGE, ("/etc/cron.d/evil", b"x")]), 422, "is an absolute path"),
    "symlink-out": (tar_gz([PACKAGE, link("leak", "../../../vault.key")]), 422, "outside the app folder"),
    "absolute-symlink": (tar_gz([PACKAGE, link("leak", "/etc/shadow")]), 422, "outside the app folder"),
    "hardlink-out": (
        tar_gz([PACKAGE, link("leak", "../../x", tarfile.LNKTYPE)]),
        422,
        "outside the app folder",
    ),
    "device": (tar_gz([PACKAGE, device("dev/null")]), 422, "device file"),
    "zip-symlink-out": (zip_symlink_out(), 422, "outside the app folder"),
    "zip-bomb": (zip_bomb(), 413, "unpacks to more than"),
    "gzip-bomb": (gzip_bomb(), 413, "unpacks to more than"),
    "over-the-body-limit": (b"\x1f\x8b" + b"\0" * (UPLOAD_LIMIT + 10), 413, "over the limit"),
    "not-an-archive": (b"hello, world", 422, "neither"),
    "no-package-json": (tar_gz([("README.md", b"hi")]), 422, "no package.json"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_and_leaves_nothing_behind(
    engine: Engine, http: httpx.Client, case: str
) -> None:
    body, status, message = HOSTILE[case]
    token = platform_token(engine, f"hostile-{case}")
    before_apps, before_rows = stored_apps(engine), engine.store.scalar("SELECT count(*) FROM uploads")
    response = upload(http, token, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert leftovers(engine) == []
    assert stored_apps(engine) == before_apps
    assert engine.store.scalar("SELECT count(*) FROM uploads") == before_rows
    assert not (workspace_of(engine).parent / "escape.txt").exists()


def test_an_upload_without_a_token_is_refused_before_its_body_is_read(engine: Engine) -> None:
    """The answer comes while the client has sent the headers only (it promised 1 GB more)."""
    url = httpx.URL(str(engine.url))
    with socket.create_connection((url.host, url.port), timeout=10) as connection:
        connection.sendall(
            b"POST /api/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ldk_nope\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        answer = ""
        while "}}" not in answer:  # the JSON error body may come in a second segment
            chunk = connection.recv(65536).decode()
            if not chunk:
                break
            answer += chunk
    assert answer.startswith("HTTP/1.1 401") and "unknown engine token" in answer


def test_a_preview_database_is_a_sqlite_file_or_a_sql_dump(
    engine: Engine, http: httpx.Client, tmp_path: Path
) -> None:
    token = platform_token(engine, "previewer")
    database = tmp_path / "preview.sqlite"
    connection = sqlite3.connect(database)
    connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    connection.commit()
    connection.close()
    as_file = upload(http, token, database.read_bytes(), kind="preview")
    assert as_file.status_code == 201 and as_file.json()["format"] == "sqlite", as_file.text
    dump = upload(
        http, token, b"CREATE TABLE t (id INTEGER PRIMARY KEY);\nINSERT INTO t VALUES (1);\n", kind="preview"
    )
    assert dump.status_code == 201 and dump.json()["format"] == "sql", dump.text
    archive = upload(http, token, tar_gz([PACKAGE]), kind="preview")
    assert archive.status_code == 422 and "not an archive" in archive.json()["error"]["message"]
    damaged = upload(http, token, b"SQLite format 3\x00" + b"\xff" * 200, kind="preview")
    assert damaged.status_code == 422 and "damaged SQLite" in damaged.json()["error"]["message"]
    assert leftovers(engine) == []


def test_gzip_bodies_are_not_confused_with_json_limits(http: httpx.Client, engine: Engine) -> None:
    """Ordinary JSON routes keep a small body limit; only uploads take archives."""
    big = b'{"app": "x", "pad": "' + b"a" * 2_000_000 + b'"}'
    response = http.post("/api/deploy/web", content=big, headers=platform_token(engine, "json-sender"))
    assert response.status_code == 413 and "POST /api/uploads" in response.json()["error"]["message"]
    assert gzip.decompress(gzip.compress(b"ok")) == b"ok"


def test_old_uploads_are_forgotten_unless_a_running_deployment_uses_them(
    engine: Engine, http: httpx.Client
) -> None:
    from datetime import UTC, datetime, timedelta

    from engine import uploads
    from tests.costs.conftest import add_app

    token, other = platform_token(engine, "retention-a"), platform_token(engine, "retention-b")
    shared_body = tar_gz([PACKAGE, ("shared.txt", b"shared")])
    shared_old = upload(http, token, shared_body).json()
    shared_new = upload(http, other, shared_body).json()  # the same content, still named by this one
    gone = upload(http, token, tar_gz([PACKAGE, ("gone.txt", b"gone")])).json()
    in_use = upload(http, token, tar_gz([PACKAGE, ("busy.txt", b"busy")])).json()
    fresh = upload(http, token, tar_gz([PACKAGE, ("fresh.txt", b"fresh")])).json()
    week_ago = datetime.now(UTC) - timedelta(days=8)
    for old in (shared_old, gone, in_use):
        engine.store.execute(
            "UPDATE uploads SET created_at = ? WHERE CAST(id AS TEXT) = ?", [week_ago, old["upload_id"]]
        )
    busy_folder = workspace_of(engine) / "uploads" / "app" / in_use["digest"].removeprefix("sha256:")
    app_id = add_app(engine.store, "retention-busy", user_id="retention-a")
    engine.store.execute(
        "INSERT INTO deployments (id, app_id, pipeline, status, params, requested_by)"
        " VALUES (uuid(), ?, 'web', 'running', ?, 'retention-a')",
        [app_id, json.dumps({"source_path": str(busy_folder)})],
    )

    forgotten = uploads.prune(
        engine.store, workspace_of(engine), older_than=timedelta(days=7), now=datetime.now(UTC)
    )

    assert sorted(forgotten) == sorted([shared_old["upload_id"], gone["upload_id"]])
    digest = {u["upload_id"]: u["digest"].removeprefix("sha256:") for u in (shared_new, gone, in_use, fresh)}
    assert stored_apps(engine) >= {
        digest[shared_new["upload_id"]],
        digest[in_use["upload_id"]],
        digest[fresh["upload_id"]],
    }
    assert digest[gone["upload_id"]] not in stored_apps(engine)
    refused = http.post(
        "/api/deploy/web", json={"app": "retention-gone", "upload_id": gone["upload_id"]}, headers=token
    )
    assert refused.status_code == 404 and "upload it first" in refused.json()["error"]["message"]
