import { getServerSession } from "next-auth";
import { NextResponse } from "next/server";
import { authOptions } from "@/lib/auth";

export type SessionUser = { id: number; email: string; role: "ADMIN" | "MEMBER" | "VIEWER" };

/** Returns the signed-in user when their role is allowed, else a 401/403 response. */
export async function requireRole(
  ...roles: SessionUser["role"][]
): Promise<SessionUser | NextResponse> {
  const session = await getServerSession(authOptions);
  const user = session?.user as { id?: string; email?: string; role?: SessionUser["role"] } | undefined;
  if (!user?.id || !user.role) {
    return NextResponse.json({ error: "sign in first" }, { status: 401 });
  }
  if (roles.length > 0 && !roles.includes(user.role)) {
    return NextResponse.json({ error: `needs role ${roles.join(" or ")}` }, { status: 403 });
  }
  return { id: Number(user.id), email: user.email ?? "", role: user.role };
}
