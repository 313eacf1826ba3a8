import { NextResponse } from "next/server";
import prisma from "@/lib/prisma";
import { requireRole } from "@/lib/guard";

export const dynamic = "force-dynamic";

export async function GET() {
  const projects = await prisma.project.findMany({
    where: { archived: false },
    include: { owner: { select: { id: true, name: true } }, _count: { select: { tasks: true } } },
    orderBy: { id: "asc" },
  });
  return NextResponse.json(projects);
}

export async function POST(request: Request) {
  const user = await requireRole("ADMIN", "MEMBER");
  if (user instanceof NextResponse) return user;
  const body = await request.json();
  if (!body?.name) return NextResponse.json({ error: "name is required" }, { status: 400 });
  const project = await prisma.project.create({ data: { name: String(body.name), ownerId: user.id } });
  return NextResponse.json(project, { status: 201 });
}
