import { db } from "@/lib/db";

// Reads the database on every request: never prerendered at build time.
export const dynamic = "force-dynamic";

export default async function Home() {
  const products = await db.product.findMany({
    where: { active: true },
    include: { category: true },
    orderBy: { name: "asc" },
  });
  return (
    <main>
      <h1>Products</h1>
      <table>
        <thead>
          <tr>
            <th>SKU</th>
            <th>Name</th>
            <th>Category</th>
            <th>Price</th>
          </tr>
        </thead>
        <tbody>
          {products.map((p) => (
            <tr key={p.id}>
              <td>{p.sku}</td>
              <td>{p.name}</td>
              <td>{p.category.name}</td>
              <td>{p.price.toFixed(2)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}
