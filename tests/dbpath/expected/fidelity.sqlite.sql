-- CreateTable
CREATE TABLE "accounts" (
    "id" BIGINT NOT NULL PRIMARY KEY,
    "email" TEXT NOT NULL,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "plan" TEXT NOT NULL DEFAULT 'FREE',
    "balance" DECIMAL NOT NULL,
    "ratio" REAL,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "profile" JSONB,
    "avatar" BLOB,
    "note" TEXT,
    "manager_id" BIGINT,
    CONSTRAINT "accounts_manager_id_fkey" FOREIGN KEY ("manager_id") REFERENCES "accounts" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Tag" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "label" TEXT NOT NULL
);

-- CreateTable
CREATE TABLE "memberships" (
    "account_id" BIGINT NOT NULL,
    "team_slug" TEXT NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'member',
    "joined_at" DATETIME NOT NULL,

    PRIMARY KEY ("account_id", "team_slug"),
    CONSTRAINT "memberships_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "_AccountToTag" (
    "A" BIGINT NOT NULL,
    "B" INTEGER NOT NULL,
    CONSTRAINT "_AccountToTag_A_fkey" FOREIGN KEY ("A") REFERENCES "accounts" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "_AccountToTag_B_fkey" FOREIGN KEY ("B") REFERENCES "Tag" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "accounts_email_key" ON "accounts"("email");

-- CreateIndex
CREATE INDEX "accounts_created_at_idx" ON "accounts"("created_at");

-- CreateIndex
CREATE UNIQUE INDEX "Tag_label_key" ON "Tag"("label");

-- CreateIndex
CREATE UNIQUE INDEX "_AccountToTag_AB_unique" ON "_AccountToTag"("A", "B");

-- CreateIndex
CREATE INDEX "_AccountToTag_B_index" ON "_AccountToTag"("B");
