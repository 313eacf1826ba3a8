import { NextResponse } from "next/server";
import prisma from "@/lib/prisma";

export const dynamic = "force-dynamic";

export async function GET() {
  const started = Date.now();
  try {
    await prisma.$queryRaw`SELECT 1`;
    const tasks = await prisma.task.count();
    return NextResponse.json({ status: "ok", database: "ok", tasks, ms: Date.now() - started });
  } catch (error) {
    return NextResponse.json(
      { status: "error", database: "unreachable", error: String(error) },
      { status: 503 },
    );
  }
}
