// The task board's tables as Prisma's SQLite migration creates them (implicit many-to-many
// `_LabelToTask`: A is the Label id, B the Task id, by model name order).
export const ddl = `
CREATE TABLE "users" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "email" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "password_hash" TEXT NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'MEMBER',
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE "projects" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "archived" BOOLEAN NOT NULL DEFAULT false,
    "owner_id" INTEGER NOT NULL,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "projects_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE TABLE "tasks" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "title" TEXT NOT NULL,
    "done" BOOLEAN NOT NULL DEFAULT false,
    "estimate_hours" DECIMAL NOT NULL DEFAULT 1,
    "meta" JSONB,
    "due_at" DATETIME,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "project_id" INTEGER NOT NULL,
    "assignee_id" INTEGER,
    "parent_id" INTEGER,
    CONSTRAINT "tasks_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "tasks_assignee_id_fkey" FOREIGN KEY ("assignee_id") REFERENCES "users" ("id") ON DELETE SET NULL ON UPDATE CASCADE,
    CONSTRAINT "tasks_parent_id_fkey" FOREIGN KEY ("parent_id") REFERENCES "tasks" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE TABLE "labels" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL
);
CREATE TABLE "_LabelToTask" (
    "A" INTEGER NOT NULL,
    "B" INTEGER NOT NULL,
    CONSTRAINT "_LabelToTask_A_fkey" FOREIGN KEY ("A") REFERENCES "labels" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "_LabelToTask_B_fkey" FOREIGN KEY ("B") REFERENCES "tasks" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE INDEX "tasks_project_id_idx" ON "tasks"("project_id");
CREATE UNIQUE INDEX "labels_name_key" ON "labels"("name");
CREATE UNIQUE INDEX "_LabelToTask_AB_unique" ON "_LabelToTask"("A", "B");
CREATE INDEX "_LabelToTask_B_index" ON "_LabelToTask"("B");
`;

export function rows(hash) {
  return {
    users: [
      { id: 1, email: "admin@taskboard.test", name: "Ada Admin", password_hash: hash, role: "ADMIN", created_at: 1767225600000 },
      { id: 2, email: "mo@taskboard.test", name: "Mo Member", password_hash: hash, role: "MEMBER", created_at: "2026-01-02T09:30:00.000Z" },
      { id: 3, email: "vi@taskboard.test", name: "Vi Viewer", password_hash: hash, role: "VIEWER", created_at: "2026-01-03 14:05:00" },
    ],
    projects: [
      { id: 1, name: "Website relaunch", archived: 0, owner_id: 1, created_at: 1767312000000 },
      { id: 2, name: "Spring campaign", archived: 0, owner_id: 2, created_at: "2026-01-04T08:00:00.000Z" },
      { id: 3, name: "Old intranet", archived: 1, owner_id: 1, created_at: "2025-06-01 12:00:00" },
    ],
    tasks: [
      { id: 1, title: "Design the landing page", done: 1, estimate_hours: "6.5", meta: '{"figma":"frame-12"}', due_at: 1767916800000, created_at: 1767312000000, project_id: 1, assignee_id: 2, parent_id: null },
      { id: 2, title: "Write the copy", done: 0, estimate_hours: "3", meta: null, due_at: "2026-01-20T17:00:00.000Z", created_at: "2026-01-05T10:15:30.250Z", project_id: 1, assignee_id: 2, parent_id: null },
      { id: 3, title: "Hero headline", done: 0, estimate_hours: "0.75", meta: '{"variants":["A","B"]}', due_at: "2026-01-18 09:00:00", created_at: "2026-01-06 11:00:00", project_id: 1, assignee_id: null, parent_id: 2 },
      { id: 4, title: "Book the photographer", done: 0, estimate_hours: "1", meta: "{}", due_at: null, created_at: 1767744000000, project_id: 2, assignee_id: 1, parent_id: null },
    ],
    labels: [
      { id: 1, name: "design" },
      { id: 2, name: "copy" },
      { id: 3, name: "urgent" },
    ],
    _LabelToTask: [
      { A: 1, B: 1 },
      { A: 2, B: 2 },
      { A: 3, B: 2 },
      { A: 2, B: 3 },
    ],
  };
}
