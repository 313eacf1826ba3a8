// The shop's tables as Prisma's SQLite migration creates them.
export const ddl = `
CREATE TABLE "users" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "email" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "password_hash" TEXT NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'CUSTOMER',
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE "categories" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "parent_id" INTEGER,
    CONSTRAINT "categories_parent_id_fkey" FOREIGN KEY ("parent_id") REFERENCES "categories" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE TABLE "products" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sku" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "price" DECIMAL NOT NULL,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "attributes" JSONB,
    "category_id" INTEGER NOT NULL,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" DATETIME NOT NULL,
    CONSTRAINT "products_category_id_fkey" FOREIGN KEY ("category_id") REFERENCES "categories" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE TABLE "orders" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "user_id" INTEGER NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'PENDING',
    "total" DECIMAL NOT NULL,
    "placed_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "orders_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE TABLE "order_items" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "order_id" INTEGER NOT NULL,
    "product_id" INTEGER NOT NULL,
    "quantity" INTEGER NOT NULL,
    "unit_price" DECIMAL NOT NULL,
    CONSTRAINT "order_items_order_id_fkey" FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "order_items_product_id_fkey" FOREIGN KEY ("product_id") REFERENCES "products" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE UNIQUE INDEX "products_sku_key" ON "products"("sku");
CREATE INDEX "products_category_id_idx" ON "products"("category_id");
`;

export function rows(hash) {
  return {
    users: [
      { id: 1, email: "admin@shop.test", name: "Ada Admin", password_hash: hash, role: "ADMIN", created_at: 1767225600000 },
      { id: 2, email: "sam@shop.test", name: "Sam Staff", password_hash: hash, role: "STAFF", created_at: "2026-01-02T09:30:00.000Z" },
      { id: 3, email: "cleo@shop.test", name: "Cleo Customer", password_hash: hash, role: "CUSTOMER", created_at: "2026-01-03 14:05:00" },
    ],
    categories: [
      { id: 1, name: "Kitchen", parent_id: null },
      { id: 2, name: "Coffee", parent_id: 1 },
      { id: 3, name: "Garden", parent_id: null },
    ],
    products: [
      { id: 1, sku: "CUP-001", name: "Enamel cup", price: "12.50", active: 1, attributes: '{"colour":"teal","ml":350}', category_id: 1, created_at: 1767312000000, updated_at: 1767312000000 },
      { id: 2, sku: "BEAN-250", name: "House espresso beans 250 g", price: "9.95", active: 1, attributes: '{"roast":"dark","origin":["BR","ET"]}', category_id: 2, created_at: "2026-01-04T08:00:00.000Z", updated_at: "2026-01-05T10:15:30.250Z" },
      { id: 3, sku: "GRIND-1", name: "Hand grinder", price: "64.00", active: 1, attributes: null, category_id: 2, created_at: "2026-01-06 11:00:00", updated_at: "2026-01-06 11:00:00" },
      { id: 4, sku: "SPADE-9", name: "Border spade (discontinued)", price: "38.00", active: 0, attributes: "{}", category_id: 3, created_at: 1767744000000, updated_at: "2026-01-10 16:45:00" },
    ],
    orders: [
      { id: 1, user_id: 3, status: "PAID", total: "34.40", placed_at: 1767830400000 },
      { id: 2, user_id: 3, status: "PENDING", total: "64.00", placed_at: "2026-01-09T18:20:00.000Z" },
    ],
    order_items: [
      { id: 1, order_id: 1, product_id: 1, quantity: 2, unit_price: "12.50" },
      { id: 2, order_id: 1, product_id: 2, quantity: 1, unit_price: "9.40" },
      { id: 3, order_id: 2, product_id: 3, quantity: 1, unit_price: "64.00" },
    ],
  };
}
