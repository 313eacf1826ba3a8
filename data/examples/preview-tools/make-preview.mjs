// Writes data/examples/<app>/preview.sqlite with sql.js, byte for byte what the app builder's
// in-browser database hands over (`db.export()`).
//
// The rows deliberately mix the storage forms real previews contain: DateTime as epoch milliseconds
// (Prisma's native SQLite engine), as ISO-8601 text (driver adapters) and as `YYYY-MM-DD HH:MM:SS`
// (SQLite's CURRENT_TIMESTAMP default); booleans as 0/1; Decimal and Json as text.
//
//   node make-preview.mjs shop|taskboard
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import bcrypt from "bcryptjs";
import initSqlJs from "sql.js";

const here = dirname(fileURLToPath(import.meta.url));
const app = process.argv[2];
const { ddl, rows } = await import(`./${app}.mjs`);

// Every preview user signs in with this password.
export const PREVIEW_PASSWORD = "preview123";
const hash = bcrypt.hashSync(PREVIEW_PASSWORD, 10);

const SQL = await initSqlJs();
const db = new SQL.Database();
db.exec("PRAGMA foreign_keys = ON;");
db.exec(ddl);
for (const [table, records] of Object.entries(rows(hash))) {
  for (const record of records) {
    const columns = Object.keys(record);
    const sql = `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) VALUES (${columns
      .map(() => "?")
      .join(", ")})`;
    db.run(sql, columns.map((c) => record[c]));
  }
}
const out = join(here, "..", app, "preview.sqlite");
writeFileSync(out, Buffer.from(db.export()));
console.log(`wrote ${out}`);
