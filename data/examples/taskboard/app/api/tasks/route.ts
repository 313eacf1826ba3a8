import { NextResponse } from "next/server";
import prisma from "@/lib/prisma";
import { requireRole } from "@/lib/guard";

export const dynamic = "force-dynamic";

export async function GET(request: Request) {
  const projectId = new URL(request.url).searchParams.get("projectId");
  const tasks = await prisma.task.findMany({
    where: projectId ? { projectId: Number(projectId) } : {},
    include: { labels: true, subtasks: { select: { id: true, title: true, done: true } } },
    orderBy: { id: "asc" },
  });
  return NextResponse.json(tasks);
}

export async function POST(request: Request) {
  const user = await requireRole("ADMIN", "MEMBER");
  if (user instanceof NextResponse) return user;
  const body = await request.json();
  if (!body?.title || !body?.projectId) {
    return NextResponse.json({ error: "title and projectId are required" }, { status: 400 });
  }
  const labels: string[] = Array.isArray(body.labels) ? body.labels : [];
  const task = await prisma.task.create({
    data: {
      title: String(body.title),
      projectId: Number(body.projectId),
      parentId: body.parentId ? Number(body.parentId) : undefined,
      assigneeId: body.assigneeId ? Number(body.assigneeId) : undefined,
      dueAt: body.dueAt ? new Date(body.dueAt) : undefined,
      estimateHours: body.estimateHours !== undefined ? String(body.estimateHours) : undefined,
      meta: body.meta ?? undefined,
      labels: { connectOrCreate: labels.map((name) => ({ where: { name }, create: { name } })) },
    },
    include: { labels: true },
  });
  return NextResponse.json(task, { status: 201 });
}
