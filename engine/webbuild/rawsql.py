"""Raw SQL in an app's code (`$queryRaw`, `$executeRaw` and their `Unsafe` forms), checked with sqlglot.

The SQL was written against the SQLite preview; on PostgreSQL it runs as written, so anything SQLite-only
is reported with sqlglot's rewrite as the suggested fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from engine.webbuild.appinfo import find_schema, line_of, source_files
from engine.webbuild.findings import Finding, Severity
from engine.webbuild.targets import Target

_TAGGED = re.compile(r"\$(?P<kind>queryRaw|executeRaw)\s*(?:<[^>`]*>)?\s*(?:\(\s*(?:Prisma\.)?sql\s*)?`")
_UNSAFE = re.compile(r"\$(?P<kind>queryRawUnsafe|executeRawUnsafe)\s*(?:<[^>`]*>)?\s*\(\s*")

# SQLite functions PostgreSQL does not have (as written), with a hand rewrite where sqlglot has none.
_SQLITE_ONLY: dict[str, str] = {
    "datetime": "CURRENT_TIMESTAMP, or NOW() - INTERVAL '7 days' for datetime('now', '-7 days')",
    "julianday": "EXTRACT(EPOCH FROM ts) / 86400 + 2440587.5",
    "unixepoch": "EXTRACT(EPOCH FROM NOW())",
    "strftime": "TO_CHAR(ts, 'YYYY-MM-DD')",
    "group_concat": "STRING_AGG(col, ',')",
    "ifnull": "COALESCE(a, b)",
    "iif": "CASE WHEN ... THEN ... ELSE ... END",
    "instr": "POSITION(needle IN haystack)",
    "json_extract": "col->>'key'",
    "last_insert_rowid": "INSERT ... RETURNING id",
    "changes": "the row count Prisma returns from $executeRaw",
    "total_changes": "the row count Prisma returns from $executeRaw",
    "printf": "FORMAT(...)",
    "randomblob": "gen_random_bytes(n)",
    "zeroblob": "a bytea literal",
    "typeof": "pg_typeof(x)",
    "sqlite_version": "version()",
}
_FUNCTION_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")


@dataclass
class RawSql:
    file: str
    line: int
    kind: str
    sql: str | None  # with `?` for each interpolation; None when built at run time
    expressions: list[str] = field(default_factory=list)
    span: tuple[int, int] | None = None  # the SQL literal's offsets in the file (quotes included)

    @property
    def unsafe(self) -> bool:
        return self.kind.endswith("Unsafe")


def _scan_template(text: str, start: int) -> tuple[list[str], list[str], int] | None:
    """Parses a template literal whose opening backtick is at ``start``: (parts, ${expressions}, end)."""
    parts: list[str] = []
    expressions: list[str] = []
    current: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == "`":
            parts.append("".join(current))
            return parts, expressions, i + 1
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            parts.append("".join(current))
            current = []
            expressions.append(text[i + 2 : j - 1].strip())
            i = j
            continue
        current.append(char)
        i += 1
    return None


def _string_literal(text: str, start: int) -> tuple[str, list[str]] | None:
    quote = text[start] if start < len(text) else ""
    if quote == "`":
        scanned = _scan_template(text, start)
        if scanned is None:
            return None
        parts, expressions, _ = scanned
        return "?".join(parts), expressions
    if quote in ("'", '"'):
        match = re.compile(rf"{quote}((?:\\.|[^{quote}\\])*){quote}").match(text, start)
        return (match.group(1), []) if match else None
    return None


def _literal_end(text: str, start: int) -> tuple[int, int] | None:
    quote = text[start] if start < len(text) else ""
    if quote == "`":
        scanned = _scan_template(text, start)
        return (start, scanned[2]) if scanned else None
    match = re.compile(rf"{quote}((?:\\.|[^{quote}\\])*){quote}").match(text, start)
    return (start, match.end()) if match else None


def find_raw_sql(app_dir: Path) -> list[RawSql]:
    found: list[RawSql] = []
    for path in source_files(app_dir):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "$queryRaw" not in text and "$executeRaw" not in text:
            continue
        relative = path.relative_to(app_dir).as_posix()
        for match in _TAGGED.finditer(text):
            scanned = _scan_template(text, match.end() - 1)
            if scanned is None:
                continue
            parts, expressions, end = scanned
            found.append(
                RawSql(
                    relative,
                    line_of(text, match.start()),
                    match["kind"],
                    "?".join(parts),
                    expressions,
                    (match.end() - 1, end),
                )
            )
        for match in _UNSAFE.finditer(text):
            literal = _string_literal(text, match.end())
            sql, expressions = literal if literal else (None, [])
            span = _literal_end(text, match.end()) if literal and not expressions else None
            found.append(
                RawSql(relative, line_of(text, match.start()), match["kind"], sql, expressions, span)
            )
    return found


def _quote_mixed_case(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Identifier) and not node.quoted and node.this != node.this.lower():
        return exp.Identifier(this=node.this, quoted=True)
    return node


def _numbered_parameters(tree: exp.Expr) -> exp.Expr:
    counter = iter(range(1, 10_000))
    return tree.transform(
        lambda node: (
            exp.Parameter(this=exp.Literal.number(next(counter)))
            if isinstance(node, exp.Placeholder)
            else node
        )
    )


def postgres_rewrite(raw: RawSql, tree: exp.Expr) -> str:
    """sqlglot's PostgreSQL version of the statement, with mixed-case names quoted."""
    rewritten = tree.transform(_quote_mixed_case)
    if raw.unsafe:
        return _numbered_parameters(rewritten).sql("postgres")
    sql = rewritten.sql("postgres")
    # Put the template's ${...} back where sqlglot wrote its placeholders, in order.
    for expression in raw.expressions:
        sql = sql.replace("%s", "${" + expression + "}", 1)
    return sql


def boolean_columns(schema_text: str) -> set[str]:
    """Column names (after @map) of the schema's Boolean fields, lower-cased."""
    columns = set()
    for line in schema_text.splitlines():
        match = re.match(r"\s*(\w+)\s+Boolean\??\s*(.*)$", line)
        if match:
            mapped = re.search(r'@map\(\s*"([^"]+)"', match.group(2))
            columns.add((mapped.group(1) if mapped else match.group(1)).lower())
    return columns


def _boolean_as_number(node: exp.Expr, booleans: set[str]) -> bool:
    if not isinstance(node, (exp.EQ, exp.NEQ)):
        return False
    sides = (node.left, node.right)
    column = next((side for side in sides if isinstance(side, exp.Column)), None)
    number = next((side for side in sides if isinstance(side, exp.Literal) and side.this in ("0", "1")), None)
    return column is not None and number is not None and column.name.lower() in booleans


def _numbers_to_booleans(tree: exp.Expr, booleans: set[str]) -> exp.Expr:
    def fix(node: exp.Expr) -> exp.Expr:
        if _boolean_as_number(node, booleans):
            node = node.copy()
            for key in ("this", "expression"):
                side = node.args[key]
                if isinstance(side, exp.Literal):
                    node.set(key, exp.Boolean(this=side.this == "1"))
        return node

    return tree.transform(fix)


def check_raw_sql(raw: RawSql, target: Target, booleans: set[str] | None = None) -> Finding | None:
    def finding(severity: Severity, code: str, message: str) -> Finding:
        return Finding(raw.file, raw.line, severity, code, message)

    if raw.sql is None:
        return finding(
            "warning",
            "raw-sql-dynamic",
            f"${raw.kind} gets SQL built at run time, which cannot be checked before deploying: "
            f"make sure it runs on {target.sqlglot_dialect} (or use a tagged $queryRaw`...`)",
        )
    try:
        tree = sqlglot.parse_one(raw.sql, read="sqlite")
    except SqlglotError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "syntax error"
        return finding(
            "warning",
            "raw-sql-unparsed",
            f"could not parse this raw SQL ({first_line}); check by hand that it runs on {target.sqlglot_dialect}",
        )
    if target.family == "libsql":
        return None  # written and previewed against SQLite: it runs as it is on libSQL

    problems: list[str] = []
    called = {name.lower() for name in _FUNCTION_CALL.findall(raw.sql)}
    for name in sorted(called & _SQLITE_ONLY.keys()):
        problems.append(f"{name}() is SQLite-only (on PostgreSQL use {_SQLITE_ONLY[name]})")
    mixed = sorted(
        {
            ident.this
            for ident in tree.find_all(exp.Identifier)
            if not ident.quoted and ident.this != ident.this.lower()
        }
    )
    if mixed:
        names = ", ".join(mixed)
        problems.append(
            f"unquoted mixed-case name(s) {names}: PostgreSQL folds them to lower case, so quote them "
            f'("{mixed[0]}") or use the @@map/@map names'
        )
    as_numbers = sorted(
        {
            node.sql("sqlite")
            for node in tree.find_all(exp.EQ, exp.NEQ)
            if _boolean_as_number(node, booleans or set())
        }
    )
    if as_numbers:
        problems.append(
            f"{', '.join(as_numbers)} compares a Boolean column with a number: SQLite stores "
            "booleans as 0/1, PostgreSQL needs true/false"
        )
        tree = _numbers_to_booleans(tree, booleans or set())
    if raw.unsafe and any(isinstance(node, exp.Placeholder) for node in tree.find_all(exp.Placeholder)):
        problems.append("`?` placeholders: on PostgreSQL Prisma expects $1, $2, ...")
    if not problems:
        return None
    rewrite = postgres_rewrite(raw, tree)
    left = sorted({name.lower() for name in _FUNCTION_CALL.findall(rewrite)} & _SQLITE_ONLY.keys())
    if not left and raw.span is not None:
        return finding(
            "warning",
            "raw-sql-rewritten",
            f"${raw.kind} would fail on PostgreSQL: " + "; ".join(problems) + ". The working copy runs "
            f"sqlglot's rewrite instead: {rewrite}",
        )
    offer = (
        f"sqlglot rewrites it as: {rewrite}"
        if not left
        else f"sqlglot cannot rewrite {', '.join(n + '()' for n in left)}; its partial rewrite: {rewrite}"
    )
    return finding(
        "blocking",
        "raw-sql-dialect",
        f"${raw.kind} will fail on PostgreSQL: " + "; ".join(problems) + f". {offer}",
    )


def rewrite_raw_sql(workdir: Path, target: Target) -> list[str]:
    """Rewrites, in the working copy, each raw SQL statement sqlglot can fully rewrite for PostgreSQL;
    returns where ("app/api/x/route.ts:12: ...")."""
    if target.family == "libsql":
        return []
    schema = find_schema(workdir)
    booleans = boolean_columns(schema.read_text(encoding="utf-8", errors="replace")) if schema else set()
    by_file: dict[str, list[tuple[RawSql, str]]] = {}
    for raw in find_raw_sql(workdir):
        found = check_raw_sql(raw, target, booleans)
        if found is None or found.code != "raw-sql-rewritten" or raw.span is None:
            continue
        rewrite = found.message.split("sqlglot's rewrite instead: ", 1)[1]
        by_file.setdefault(raw.file, []).append((raw, rewrite))
    changes = []
    for relative, items in by_file.items():
        path = workdir / relative
        text = path.read_text(encoding="utf-8")
        for raw, rewrite in sorted(items, key=lambda item: item[0].span or (0, 0), reverse=True):
            start, end = raw.span or (0, 0)
            quote = text[start]
            if quote == "`":
                literal = "`" + rewrite.replace("`", "\\`") + "`"
            else:
                literal = quote + rewrite.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote
            text = text[:start] + literal + text[end:]
            changes.append(
                f"{relative}:{raw.line}: ${raw.kind} rewritten for PostgreSQL by sqlglot: {rewrite}"
            )
        path.write_text(text, encoding="utf-8")
    return sorted(changes)


def raw_sql_findings(app_dir: Path, target: Target) -> list[Finding]:
    schema = find_schema(app_dir)
    booleans = boolean_columns(schema.read_text(encoding="utf-8")) if schema else set()
    findings = [check_raw_sql(raw, target, booleans) for raw in find_raw_sql(app_dir)]
    return [finding for finding in findings if finding is not None]
