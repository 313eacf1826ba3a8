import { NextResponse } from "next/server";
import { db } from "@/lib/db";
import { requireRole } from "@/lib/guard";

export const dynamic = "force-dynamic";

export async function GET() {
  const products = await db.product.findMany({
    where: { active: true },
    include: { category: true },
    orderBy: { id: "asc" },
  });
  return NextResponse.json(products);
}

export async function POST(request: Request) {
  const user = await requireRole("ADMIN", "STAFF");
  if (user instanceof NextResponse) return user;
  const body = await request.json();
  if (!body?.sku || !body?.name || body?.price === undefined || !body?.categoryId) {
    return NextResponse.json({ error: "sku, name, price and categoryId are required" }, { status: 400 });
  }
  const product = await db.product.create({
    data: {
      sku: String(body.sku),
      name: String(body.name),
      price: String(body.price),
      categoryId: Number(body.categoryId),
      attributes: body.attributes ?? undefined,
    },
  });
  return NextResponse.json(product, { status: 201 });
}
