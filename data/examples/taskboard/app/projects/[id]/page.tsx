import { notFound } from "next/navigation";
import prisma from "@/lib/prisma";

export const dynamic = "force-dynamic";

export default async function ProjectPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const project = await prisma.project.findUnique({
    where: { id: Number(id) },
    include: { tasks: { where: { parentId: null }, include: { labels: true, subtasks: true } } },
  });
  if (!project) notFound();
  return (
    <main>
      <h1>{project.name}</h1>
      <ul>
        {project.tasks.map((t) => (
          <li key={t.id}>
            {t.done ? "✔" : "○"} {t.title} · {t.estimateHours.toString()} h
            {t.dueAt && <> · due {t.dueAt.toISOString().slice(0, 10)}</>}
            {t.labels.map((l) => (
              <span key={l.id}> #{l.name}</span>
            ))}
            {t.subtasks.length > 0 && (
              <ul>
                {t.subtasks.map((s) => (
                  <li key={s.id}>
                    {s.done ? "✔" : "○"} {s.title}
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
      </ul>
    </main>
  );
}
