"""`transform_schema` keeps the app's schema and passes the real Prisma CLI's validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.dbpath import node
from engine.dbpath.schema import parse_schema
from engine.dbpath.transform import blocks, transform_schema
from engine.errors import InputError
from tests.dbpath.conftest import FIDELITY_SCHEMA, SHOP_SCHEMA


def prisma_validate(tmp_path: Path, schema_text: str) -> str:
    path = tmp_path / "schema.prisma"
    path.write_text(schema_text)
    done = node.prisma_cli(["validate", "--schema", str(path)], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def untouched_blocks(schema_text: str) -> list[str]:
    return [schema_text[b.start : b.end + 1] for b in blocks(schema_text) if b.kind in ("model", "enum")]


@pytest.mark.parametrize("schema_path", [FIDELITY_SCHEMA, SHOP_SCHEMA], ids=["fidelity", "shop"])
@pytest.mark.parametrize(("target", "provider"), [("postgresql", "postgresql"), ("libsql", "sqlite")])
def test_transformed_schema_is_valid_and_keeps_every_model(
    tmp_path: Path, schema_path: Path, target: str, provider: str
) -> None:
    original = schema_path.read_text()
    transformed = transform_schema(original, target)

    assert "valid" in prisma_validate(tmp_path, transformed)
    assert f'provider = "{provider}"' in transformed
    assert "url " not in transformed and "url=" not in transformed.replace(" ", "")
    assert untouched_blocks(transformed) == untouched_blocks(original)
    before, after = parse_schema(original), parse_schema(transformed)
    assert after.tables == before.tables


def test_fidelity_schema_tables_follow_maps_and_relations() -> None:
    schema = parse_schema(FIDELITY_SCHEMA.read_text())
    names = {t.name for t in schema.tables}
    assert names == {"accounts", "Tag", "memberships", "_AccountToTag"}
    accounts = schema.table("accounts")
    assert accounts.column("created_at").field == "createdAt"
    assert accounts.column("plan").enum_values == ("FREE", "pro")
    assert schema.table("memberships").primary_key == ("account_id", "team_slug")
    link = schema.table("_AccountToTag")
    assert [(c.name, c.type) for c in link.columns] == [("A", "BigInt"), ("B", "Int")]


def test_generator_keeps_other_preview_features_and_comments() -> None:
    schema = FIDELITY_SCHEMA.read_text().replace('["driverAdapters"]', '["driverAdapters", "relationJoins"]')
    transformed = transform_schema(schema, "postgresql")
    assert 'previewFeatures = ["relationJoins"]' in transformed
    assert "/// People who use the app." in transformed


def test_scalar_list_cannot_go_to_libsql() -> None:
    schema = 'datasource db {\n  provider = "postgresql"\n}\nmodel A {\n  id Int @id\n  tags String[]\n}\n'
    with pytest.raises(InputError, match="field tags is a scalar list"):
        transform_schema(schema, "libsql")


def test_broken_schema_is_reported_with_prisma_message() -> None:
    with pytest.raises(InputError, match="Prisma rejected the schema"):
        parse_schema('datasource db {\n  provider = "sqlite"\n}\nmodel A {\n  id Int @id\n  b Nope\n}\n')


def test_unknown_target_is_refused() -> None:
    with pytest.raises(InputError, match="use postgresql or libsql"):
        transform_schema(FIDELITY_SCHEMA.read_text(), "mysql")
