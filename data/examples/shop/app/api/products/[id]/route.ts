import { NextResponse } from "next/server";
import { db } from "@/lib/db";
import { requireRole } from "@/lib/guard";

type Params = { params: Promise<{ id: string }> };

export async function GET(_request: Request, { params }: Params) {
  const { id } = await params;
  const product = await db.product.findUnique({ where: { id: Number(id) }, include: { category: true } });
  if (!product) return NextResponse.json({ error: "not found" }, { status: 404 });
  return NextResponse.json(product);
}

export async function PATCH(request: Request, { params }: Params) {
  const user = await requireRole("ADMIN", "STAFF");
  if (user instanceof NextResponse) return user;
  const { id } = await params;
  const body = await request.json();
  const product = await db.product.update({
    where: { id: Number(id) },
    data: {
      name: body.name ?? undefined,
      price: body.price !== undefined ? String(body.price) : undefined,
      active: typeof body.active === "boolean" ? body.active : undefined,
    },
  });
  return NextResponse.json(product);
}

export async function DELETE(_request: Request, { params }: Params) {
  const user = await requireRole("ADMIN");
  if (user instanceof NextResponse) return user;
  const { id } = await params;
  await db.product.delete({ where: { id: Number(id) } });
  return new NextResponse(null, { status: 204 });
}
