import { NextResponse } from "next/server";
import prisma from "@/lib/prisma";
import { requireRole } from "@/lib/guard";

type Params = { params: Promise<{ id: string }> };

export async function GET(_request: Request, { params }: Params) {
  const { id } = await params;
  const task = await prisma.task.findUnique({
    where: { id: Number(id) },
    include: { labels: true, subtasks: true, parent: true, assignee: { select: { id: true, name: true } } },
  });
  if (!task) return NextResponse.json({ error: "not found" }, { status: 404 });
  return NextResponse.json(task);
}

export async function PATCH(request: Request, { params }: Params) {
  const user = await requireRole("ADMIN", "MEMBER");
  if (user instanceof NextResponse) return user;
  const { id } = await params;
  const body = await request.json();
  const task = await prisma.task.update({
    where: { id: Number(id) },
    data: {
      title: body.title ?? undefined,
      done: typeof body.done === "boolean" ? body.done : undefined,
      dueAt: body.dueAt ? new Date(body.dueAt) : undefined,
    },
  });
  return NextResponse.json(task);
}

export async function DELETE(_request: Request, { params }: Params) {
  const user = await requireRole("ADMIN");
  if (user instanceof NextResponse) return user;
  const { id } = await params;
  await prisma.task.delete({ where: { id: Number(id) } });
  return new NextResponse(null, { status: 204 });
}
