import { NextResponse } from "next/server";
import { db } from "@/lib/db";

export const dynamic = "force-dynamic";

export async function GET() {
  const started = Date.now();
  try {
    await db.$queryRaw`SELECT 1`;
    const products = await db.product.count();
    return NextResponse.json({ status: "ok", database: "ok", products, ms: Date.now() - started });
  } catch (error) {
    return NextResponse.json(
      { status: "error", database: "unreachable", error: String(error) },
      { status: 503 },
    );
  }
}
