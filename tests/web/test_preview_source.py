"""Which preview data a deployment imports: --preview, else preview.sqlite, else the datasource's file."""

from __future__ import annotations

from pathlib import Path

from pipelines.web import preview_source

SCHEMA = 'datasource db {\n  provider = "sqlite"\n  url      = "file:./dev.db"\n}\n'


def make_app(root: Path) -> Path:
    (root / "prisma").mkdir(parents=True)
    (root / "prisma" / "schema.prisma").write_text(SCHEMA)
    return root


def test_the_datasource_file_is_used_when_nothing_else_is_given(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    assert preview_source(app, {}) is None  # no data anywhere: the tables start empty
    (app / "prisma" / "dev.db").write_bytes(b"SQLite format 3\x00")
    assert preview_source(app, {}) == (app / "prisma" / "dev.db").resolve()


def test_preview_sqlite_then_the_flag_take_precedence(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    (app / "prisma" / "dev.db").write_bytes(b"SQLite format 3\x00")
    (app / "preview.sqlite").write_bytes(b"SQLite format 3\x00")
    assert preview_source(app, {}) == app / "preview.sqlite"
    chosen = tmp_path / "export.sql"
    assert preview_source(app, {"preview": str(chosen)}) == chosen
