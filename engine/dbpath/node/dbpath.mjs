// Prisma's own engines, driven from Python: one JSON request on stdin, one JSON answer on stdout.
//   {"op": "dmmf", "schema": "..."}                         -> {"ok": true, "dmmf": {...}}
//   {"op": "ddl", "schema": "...", "dialect": "sqlite"}     -> {"ok": true, "sql": "..."}
//   {"op": "ddl", "schema": "...", "dialect": "postgresql", "url": "postgresql://..."}
//   ... "withDmmf": true first writes {"ok": true, "dmmf": {...}} and a newline, then the DDL answer, so the
//   importer can read the source while the schema engine works
// Errors come back as {"ok": false, "error": "..."} with exit code 1.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";

const require = createRequire(import.meta.url);
const { get_dmmf } = require("@prisma/prisma-schema-wasm");

// The package targets bundlers (it imports its .wasm as a module), so instantiate it by hand for Node.
async function loadSchemaEngine() {
  const glue = await import("@prisma/schema-engine-wasm/schema_engine_bg");
  const wasmPath = require.resolve("@prisma/schema-engine-wasm/schema_engine_bg").replace(/\.js$/, ".wasm");
  const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), { "./schema_engine_bg.js": glue });
  glue.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
  return glue.SchemaEngine;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function dmmf(schema) {
  return JSON.parse(get_dmmf(JSON.stringify({ prismaSchema: schema })));
}

async function adapterFactory(dialect, url) {
  if (dialect === "sqlite") {
    const { PrismaLibSql } = await import("@prisma/adapter-libsql");
    return new PrismaLibSql({ url: ":memory:" });
  }
  if (dialect === "postgresql") {
    if (!url) throw new Error("postgresql DDL needs a connection URL (the engine asks the server its version)");
    const { PrismaPg } = await import("@prisma/adapter-pg");
    return new PrismaPg({ connectionString: url });
  }
  throw new Error(`unknown dialect ${dialect}`);
}

async function ddl(schema, dialect, url) {
  const factory = bindMigrationAwareSqlAdapterFactory(await adapterFactory(dialect, url));
  const files = [{ path: "schema.prisma", content: schema }];
  const debug = () => {};
  const SchemaEngine = await loadSchemaEngine();
  const engine = await SchemaEngine.new({ datamodels: [["schema.prisma", schema]] }, debug, factory);
  try {
    const result = await engine.diff({
      from: { tag: "empty" },
      to: { tag: "schemaDatamodel", files },
      script: true,
      exitCode: null,
      filters: { externalTables: [], externalEnums: [] },
    });
    return result.stdout ?? "";
  } finally {
    engine.free();
  }
}

function message(error) {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

// Exit only once stdout is flushed (a pipe takes 64 KiB at a time); open pools must not keep Node alive.
function finish(answer, code) {
  process.stdout.write(JSON.stringify(answer), () => process.exit(code));
}

try {
  const request = await readStdin();
  let answer;
  if (request.op === "dmmf") answer = { ok: true, dmmf: dmmf(request.schema) };
  else if (request.op === "ddl") {
    // One Node start gives the importer both; the DMMF (fast) goes first, on its own line.
    if (request.withDmmf) process.stdout.write(JSON.stringify({ ok: true, dmmf: dmmf(request.schema) }) + "\n");
    answer = { ok: true, sql: await ddl(request.schema, request.dialect, request.url) };
  }
  else throw new Error(`unknown op ${request.op}`);
  finish(answer, 0);
} catch (error) {
  finish({ ok: false, error: message(error) }, 1);
}
