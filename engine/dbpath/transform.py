"""Transform an app's Prisma schema for its production database, keeping everything else byte for byte.

Prisma 7 keeps connection URLs out of the schema (``prisma.config.ts`` holds them and the app passes a
driver adapter to ``PrismaClient``), so the datasource block carries only the provider: ``postgresql`` for
Neon/PostgreSQL (``@prisma/adapter-pg``), ``sqlite`` for libSQL/Turso (``@prisma/adapter-libsql``).
Models, fields, ``@map``/``@@map``, relations, enums, defaults, ids, uniques and indexes are not
touched: only the lines that must change for the target are rewritten, comments included.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from engine.errors import InputError

Target = Literal["postgresql", "libsql"]
PROVIDER_FOR_TARGET: dict[str, str] = {"postgresql": "postgresql", "libsql": "sqlite"}
ADAPTER_FOR_TARGET: dict[str, str] = {"postgresql": "@prisma/adapter-pg", "libsql": "@prisma/adapter-libsql"}
# Datasource properties Prisma 7 rejects in a schema file (they moved to prisma.config.ts).
URL_PROPERTIES = frozenset({"url", "directUrl", "shadowDatabaseUrl"})
# Preview features that became generally available and only earn a warning now.
GA_PREVIEW_FEATURES = frozenset({"driverAdapters", "queryCompiler"})

BLOCK_START = re.compile(r"^\s*(datasource|generator|model|enum|view|type)\s+(\w+)\s*\{", re.MULTILINE)
PROPERTY = re.compile(r"^(\s*)(\w+)(\s*=\s*)(.*?)(\s*(?://.*)?)$")
NATIVE_TYPE = re.compile(r"\s*@db\.\w+(\([^)]*\))?")


@dataclass(frozen=True)
class Block:
    kind: str
    name: str
    start: int  # offset of the first character of the block's first line
    body_start: int  # offset just after "{"
    end: int  # offset of the closing "}"


def _strip_comment(line: str) -> str:
    """The line without a trailing ``//`` comment, respecting string literals."""
    in_string = False
    escaped = False
    for index, char in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif line.startswith("//", index):
            return line[:index]
    return line


def _split_comment(line: str) -> tuple[str, str]:
    """(code without trailing blanks, the rest: blanks and comment), so rewrites keep comments in place."""
    code = _strip_comment(line).rstrip()
    return code, line[len(code) :]


def blocks(schema_text: str) -> list[Block]:
    """Top-level blocks; braces inside comments or strings do not count."""
    found: list[Block] = []
    for match in BLOCK_START.finditer(schema_text):
        if found and match.start() < found[-1].end:
            continue
        line_start = match.start()  # the pattern is anchored at a line start
        depth = 1
        position = match.end()
        lines = schema_text[position:].split("\n")
        offset = position
        end = -1
        for line in lines:
            code = _strip_comment(line)
            for index, char in enumerate(code):
                if char == "{":
                    depth += 1
                elif char == "}":
                    depth -= 1
                    if depth == 0:
                        end = offset + index
                        break
            if end >= 0:
                break
            offset += len(line) + 1
        if end < 0:
            raise InputError(
                f"the schema's {match.group(1)} {match.group(2)} block is never closed with '}}'"
            )
        found.append(Block(match.group(1), match.group(2), line_start, match.end(), end))
    return found


@dataclass(frozen=True)
class Property:
    """``key = value`` in a datasource or generator block."""

    key: str
    value: str  # as written, a string's quotes removed
    offset: int  # where its line starts in the schema text


def properties(schema_text: str, block: Block) -> list[Property]:
    found: list[Property] = []
    offset = block.body_start
    for line in schema_text[block.body_start : block.end].split("\n"):
        match = PROPERTY.match(_strip_comment(line))
        if match:
            found.append(Property(match.group(2), match.group(4).strip().strip('"'), offset))
        offset += len(line) + 1
    return found


def block_property(schema_text: str, kind: str, key: str) -> Property | None:
    """The first ``key`` of the first block of ``kind`` that has one."""
    for block in blocks(schema_text):
        if block.kind == kind:
            for prop in properties(schema_text, block):
                if prop.key == key:
                    return prop
    return None


def rewrite_properties(
    schema_text: str,
    kind: str,
    *,
    drop: frozenset[str] = frozenset(),
    add: dict[str, str] | None = None,
    only: Callable[[dict[str, str]], bool] = lambda _: True,
) -> str:
    """Every ``kind`` block whose properties satisfy ``only``, without the ``drop`` keys and with ``add``'s
    lines (values as written) at its end; everything else byte for byte."""
    pieces: list[str] = []
    cursor = 0
    for block in blocks(schema_text):
        if block.kind != kind or not only({p.key: p.value for p in properties(schema_text, block)}):
            continue
        kept = [
            line
            for line in schema_text[block.body_start : block.end].split("\n")
            if not ((m := PROPERTY.match(_strip_comment(line))) and m.group(2) in drop)
        ]
        body = "\n".join(kept)
        if add:
            body = body.rstrip() + "\n" + "".join(f"  {key} = {value}\n" for key, value in add.items())
        pieces += [schema_text[cursor : block.body_start], body]
        cursor = block.end
    pieces.append(schema_text[cursor:])
    return "".join(pieces)


def datasource_provider(schema_text: str) -> str:
    found = block_property(schema_text, "datasource", "provider")
    if found is not None:
        return found.value
    raise InputError(
        'the schema has no datasource block with a provider; add `datasource db { provider = "sqlite" }`'
    )


def _rewrite_datasource(body: str, provider: str) -> str:
    out: list[str] = []
    for line in body.split("\n"):
        match = PROPERTY.match(line)
        code = PROPERTY.match(_strip_comment(line))
        if code is None or match is None:
            out.append(line)
            continue
        key = code.group(2)
        if key in URL_PROPERTIES:
            continue
        if key == "provider":
            comment = _split_comment(line)[1]
            out.append(f'{match.group(1)}provider{match.group(3)}"{provider}"{comment}')
            continue
        if key == "schemas" and provider == "sqlite":  # multi-schema is a PostgreSQL feature
            continue
        out.append(line)
    return "\n".join(out)


def _rewrite_generator(body: str) -> str:
    out: list[str] = []
    for line in body.split("\n"):
        code = PROPERTY.match(_strip_comment(line))
        if code is None or code.group(2) != "previewFeatures":
            out.append(line)
            continue
        features = re.findall(r'"([^"]*)"', code.group(4))
        kept = [f for f in features if f not in GA_PREVIEW_FEATURES]
        if kept:
            listed = ", ".join(f'"{f}"' for f in kept)
            comment = _split_comment(line)[1]
            out.append(f"{code.group(1)}previewFeatures{code.group(3)}[{listed}]{comment}")
    return "\n".join(out)


def _rewrite_model(body: str, provider: str, model: str, composite_names: set[str]) -> str:
    if provider != "sqlite":
        return body
    out: list[str] = []
    for line in body.split("\n"):
        code = _strip_comment(line)
        listed = re.match(r"^\s*(\w+)\s+(\w+)\[\]", code)
        if listed and listed.group(2) not in composite_names:
            raise InputError(
                f"model {model}: field {listed.group(1)} is a scalar list ({listed.group(2)}[]), "
                "which libSQL/SQLite cannot store; make it a relation or a Json field"
            )
        if "@db." in code:  # native types of another database have no meaning in SQLite
            kept, comment = _split_comment(line)
            line = NATIVE_TYPE.sub("", kept) + comment
        out.append(line)
    return "\n".join(out)


def transform_schema(schema_text: str, target: Target | str) -> str:
    """The schema for ``target`` ("postgresql" or "libsql"), everything else kept as written."""
    if target not in PROVIDER_FOR_TARGET:
        raise InputError(f"unknown target {target!r}: use postgresql or libsql")
    provider = PROVIDER_FOR_TARGET[target]
    datasource_provider(schema_text)  # a schema without a datasource is refused with a clear message
    found = blocks(schema_text)
    relation_targets = {b.name for b in found if b.kind in ("model", "view", "type")}
    pieces: list[str] = []
    cursor = 0
    for block in found:
        body = schema_text[block.body_start : block.end]
        if block.kind == "datasource":
            body = _rewrite_datasource(body, provider)
        elif block.kind == "generator":
            body = _rewrite_generator(body)
        elif block.kind == "model":
            body = _rewrite_model(body, provider, block.name, relation_targets)
        pieces.append(schema_text[cursor : block.body_start])
        pieces.append(body)
        cursor = block.end
    pieces.append(schema_text[cursor:])
    return "".join(pieces)


def prisma_config_for(target: Target | str, schema_path: str = "prisma/schema.prisma") -> str:
    """The ``prisma.config.ts`` that goes with a transformed schema (the URL comes from DATABASE_URL)."""
    if target not in PROVIDER_FOR_TARGET:
        raise InputError(f"unknown target {target!r}: use postgresql or libsql")
    return (
        'import { defineConfig, env } from "prisma/config";\n\n'
        "export default defineConfig({\n"
        f'  schema: "{schema_path}",\n'
        '  migrations: { path: "prisma/migrations" },\n'
        '  datasource: { url: env("DATABASE_URL") },\n'
        "});\n"
    )


def schema_for_dialect(schema_text: str, dialect: str) -> str:
    """The schema transformed for a SQL dialect's target: PostgreSQL, or libSQL for SQLite."""
    if dialect not in ("postgresql", "sqlite"):
        raise InputError(f"unknown dialect {dialect!r}: use postgresql or sqlite")
    return transform_schema(schema_text, "postgresql" if dialect == "postgresql" else "libsql")
