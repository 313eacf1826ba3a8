"""A generated app's Prisma schema: its tables as the database sees them, read with Prisma's own parser.

``parse_schema`` asks Prisma's schema parser (``@prisma/prisma-schema-wasm``, the DMMF) for the models and
turns them into the tables, columns and keys that exist in the database: ``@map``/``@@map`` names, enum
values as stored, composite ids and the implicit many-to-many tables (``_AToB`` with columns ``A``, ``B``)
that Prisma creates without a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from engine.dbpath import node
from engine.errors import InputError

Provider = Literal["sqlite", "postgresql"]
SCALARS = frozenset({"String", "Int", "BigInt", "Float", "Decimal", "Boolean", "DateTime", "Json", "Bytes"})


@dataclass(frozen=True)
class Column:
    field: str  # the Prisma field name ("A"/"B" in an implicit many-to-many table)
    name: str  # the column name in the database
    type: str  # a Prisma scalar type, or the enum's name when ``enum_values`` is set
    required: bool
    enum_values: tuple[str, ...] | None = None
    autoincrement: bool = False
    native_type: str | None = None  # a ``@db.X`` attribute's X, in a schema written for PostgreSQL

    @property
    def is_enum(self) -> bool:
        return self.enum_values is not None

    @property
    def kind(self) -> str:
        """The scalar type, or ``Enum`` for an enum column (its ``type`` is the enum's own name)."""
        return "Enum" if self.is_enum else self.type


@dataclass(frozen=True)
class Table:
    name: str  # the table name in the database
    model: str | None  # None for an implicit many-to-many table
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]  # column names

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def key_columns(self) -> tuple[str, ...]:
        """What identifies a row in a report: the primary key, else every column."""
        return self.primary_key or tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class PrismaSchema:
    provider: str
    tables: tuple[Table, ...]

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


def dmmf(schema_text: str) -> dict[str, Any]:
    answer = node.call({"op": "dmmf", "schema": schema_text})
    document: dict[str, Any] = answer["dmmf"]["datamodel"]
    return document


def parse_schema(schema_text: str) -> PrismaSchema:
    """Tables as the database holds them. A schema Prisma rejects raises ``InputError`` with its report."""
    from engine.dbpath.transform import datasource_provider, transform_schema

    provider = datasource_provider(schema_text)
    # Prisma 7 refuses a URL in the schema; older generated schemas have one, so drop it first.
    datamodel = dmmf(transform_schema(schema_text, "postgresql" if provider == "postgresql" else "libsql"))
    return schema_from_dmmf(datamodel, provider)


def schema_from_dmmf(datamodel: dict[str, Any], provider: str) -> PrismaSchema:
    enums = {e["name"]: tuple(v.get("dbName") or v["name"] for v in e["values"]) for e in datamodel["enums"]}
    models = {m["name"]: m for m in datamodel["models"]}
    tables = [_model_table(m, enums) for m in datamodel["models"]]
    tables.extend(_implicit_many_to_many(models))
    return PrismaSchema(provider=provider, tables=tuple(tables))


def _column_name(field: dict[str, Any]) -> str:
    return str(field.get("dbName") or field["name"])


def _native_type(field: dict[str, Any]) -> str | None:
    native = field.get("nativeType")  # ["VarChar", ["255"]]
    return str(native[0]) if native else None


def _model_table(model: dict[str, Any], enums: dict[str, tuple[str, ...]]) -> Table:
    columns: list[Column] = []
    by_field: dict[str, str] = {}
    for field in model["fields"]:
        if field["kind"] not in ("scalar", "enum"):
            continue
        if field.get("isList"):
            raise InputError(
                f"model {model['name']}: field {field['name']} is a scalar list ({field['type']}[]), "
                "which SQLite preview databases cannot hold; remove it or make it a relation"
            )
        default = field.get("default")
        autoincrement = isinstance(default, dict) and default.get("name") == "autoincrement"
        column = Column(
            field=field["name"],
            name=_column_name(field),
            type=field["type"],
            required=bool(field["isRequired"]),
            enum_values=enums.get(field["type"]) if field["kind"] == "enum" else None,
            autoincrement=autoincrement,
            native_type=_native_type(field),
        )
        columns.append(column)
        by_field[field["name"]] = column.name
    primary: tuple[str, ...] = tuple(by_field[f["name"]] for f in model["fields"] if f.get("isId"))
    if not primary and model.get("primaryKey"):
        primary = tuple(by_field[name] for name in model["primaryKey"]["fields"])
    return Table(
        name=str(model.get("dbName") or model["name"]),
        model=model["name"],
        columns=tuple(columns),
        primary_key=primary,
    )


def _id_column(model: dict[str, Any]) -> dict[str, Any]:
    ids = [f for f in model["fields"] if f.get("isId")]
    if len(ids) != 1:
        raise InputError(f"model {model['name']}: an implicit many-to-many relation needs a single-field @id")
    found: dict[str, Any] = ids[0]
    return found


def _implicit_many_to_many(models: dict[str, dict[str, Any]]) -> list[Table]:
    """``_RelationName`` tables: column ``A`` points at the model whose name sorts first."""
    seen: dict[str, tuple[str, str]] = {}
    for model in models.values():
        for field in model["fields"]:
            if field["kind"] != "object" or not field.get("isList") or field.get("relationFromFields"):
                continue
            other = models[field["type"]]  # the same model for a self relation
            back = [
                f
                for f in other["fields"]
                if f.get("relationName") == field["relationName"] and f is not field
            ]
            if back and all(f.get("isList") for f in back):
                first, second = sorted((model["name"], other["name"]))
                seen[field["relationName"]] = (first, second)
    tables = []
    for relation, (first, second) in sorted(seen.items()):
        a, b = _id_column(models[first]), _id_column(models[second])
        tables.append(
            Table(
                name=f"_{relation}",
                model=None,
                columns=(
                    Column(field="A", name="A", type=a["type"], required=True, native_type=_native_type(a)),
                    Column(field="B", name="B", type=b["type"], required=True, native_type=_native_type(b)),
                ),
                primary_key=("A", "B"),
            )
        )
    return tables
