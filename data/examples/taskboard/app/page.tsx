import prisma from "@/lib/prisma";

// Reads the database on every request: never prerendered at build time.
export const dynamic = "force-dynamic";

export default async function Home() {
  const projects = await prisma.project.findMany({
    where: { archived: false },
    include: { _count: { select: { tasks: true } } },
    orderBy: { name: "asc" },
  });
  return (
    <main>
      <h1>Projects</h1>
      <ul>
        {projects.map((p) => (
          <li key={p.id}>
            <a href={`/projects/${p.id}`}>{p.name}</a> ({p._count.tasks} tasks)
          </li>
        ))}
      </ul>
    </main>
  );
}
