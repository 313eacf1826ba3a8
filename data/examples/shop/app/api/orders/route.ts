import { NextResponse } from "next/server";
import { db } from "@/lib/db";
import { requireRole } from "@/lib/guard";

export const dynamic = "force-dynamic";

export async function GET() {
  const user = await requireRole();
  if (user instanceof NextResponse) return user;
  const orders = await db.order.findMany({
    where: user.role === "CUSTOMER" ? { userId: user.id } : {},
    include: { items: { include: { product: true } } },
    orderBy: { placedAt: "desc" },
  });
  return NextResponse.json(orders);
}

export async function POST(request: Request) {
  const user = await requireRole("CUSTOMER", "ADMIN");
  if (user instanceof NextResponse) return user;
  const body = (await request.json()) as { items?: { productId: number; quantity: number }[] };
  if (!body.items?.length) return NextResponse.json({ error: "items are required" }, { status: 400 });
  const products = await db.product.findMany({ where: { id: { in: body.items.map((i) => i.productId) } } });
  const priceOf = new Map(products.map((p) => [p.id, p.price]));
  let total = 0;
  for (const item of body.items) total += Number(priceOf.get(item.productId) ?? 0) * item.quantity;
  const order = await db.order.create({
    data: {
      userId: user.id,
      total: total.toFixed(2),
      items: {
        create: body.items.map((item) => ({
          productId: item.productId,
          quantity: item.quantity,
          unitPrice: String(priceOf.get(item.productId) ?? 0),
        })),
      },
    },
    include: { items: true },
  });
  return NextResponse.json(order, { status: 201 });
}
