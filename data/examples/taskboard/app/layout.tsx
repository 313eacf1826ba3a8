import type { ReactNode } from "react";

export const metadata = { title: "Taskboard", description: "A small task board built by the app builder" };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: "system-ui, sans-serif", margin: "2rem" }}>
        <nav style={{ marginBottom: "1rem" }}>
          <a href="/">Projects</a> · <a href="/login">Sign in</a>
        </nav>
        {children}
      </body>
    </html>
  );
}
