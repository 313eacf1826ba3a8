"""next/font/google served from the npm registry: the build never reaches Google.

Next.js reads Google's CSS through NEXT_FONT_GOOGLE_MOCKED_RESPONSES when that variable names a module
(and then reads font files from absolute paths). The module written here answers every CSS URL Next asks
for from the `@fontsource/<family>` package of the same family (same weights, styles and subsets, with
their unicode ranges), which the transform adds to package.json as optional dependencies. A family
with no such package (npm skips a missing optional dependency) gets a stand-in @font-face naming the
family with no file, so the build succeeds and pages use the app's fallback fonts; the mock lists those
families in ``launchdeck/font-fallbacks.txt`` and ``fallback_findings`` turns them into warnings.
No app module changes.

families = google_font_families(workdir)          # ["Inter", "Geist Mono"]
packages = {fontsource_package(f): "^5" for f in families}
env_prefix = write_font_mock(workdir)             # "NEXT_FONT_GOOGLE_MOCKED_RESPONSES=$PWD/launchdeck/google-fonts.cjs"
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from engine.webbuild.appinfo import read_text, source_files
from engine.webbuild.findings import Finding

MOCK = "launchdeck/google-fonts.cjs"
FALLBACKS = "launchdeck/font-fallbacks.txt"
FONTSOURCE_VERSION = "^5"
_IMPORT = re.compile(r"""import\s*\{([^}]*)\}\s*from\s*["'](?:next|@next)/font/google["']""")


def google_font_imports(app_dir: Path) -> dict[str, tuple[str, int]]:
    """Each imported family's first import: (file relative to the app, line)."""
    found: dict[str, tuple[str, int]] = {}
    for path in source_files(app_dir):
        text = read_text(path) or ""
        for match in _IMPORT.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            for item in match.group(1).split(","):
                name = item.strip().split(" as ")[0].strip()
                if name and name != "type":
                    found.setdefault(name.replace("_", " "), (path.relative_to(app_dir).as_posix(), line))
    return found


def google_font_families(app_dir: Path) -> list[str]:
    """Families the app imports from next/font/google ("Geist_Mono" -> "Geist Mono"), sorted."""
    return sorted(google_font_imports(app_dir))


def fallback_findings(workdir: Path) -> list[Finding]:
    """A warning for each family the build served without its font (no @fontsource package), read from
    what the mock recorded in the built working copy. The copy is the tenant's: the list is read
    without following links, and only families the app imports count."""
    imports = google_font_imports(workdir)
    folder = workdir / Path(FALLBACKS).parent
    if folder.is_symlink() or not folder.is_dir():
        return []
    try:
        fd = os.open(workdir / FALLBACKS, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as recorded:
        families = set(recorded.read(64 * 1024).decode("utf-8", "replace").splitlines())
    return [
        Finding(
            file=imports[family][0],
            line=imports[family][1],
            severity="warning",
            code="google-font-fallback",
            message=(
                f"next/font/google {family}: the npm registry has no {fontsource_package(family)} package, "
                f"so the build served no {family} font files and pages show the fallback font; to serve "
                f"{family} itself, add its font files to the app and load them with next/font/local"
            ),
        )
        for family in sorted(families & imports.keys())
    ]


def fontsource_package(family: str) -> str:
    return "@fontsource/" + re.sub(r"[^a-z0-9]+", "-", family.lower()).strip("-")


_MOCK_JS = r"""// Written by Launchdeck: Google Fonts CSS for next/font/google, served from @fontsource packages.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const ROOT = path.join(__dirname, "..", "node_modules", "@fontsource");
const FALLBACKS = path.join(__dirname, "font-fallbacks.txt");

// No @fontsource package for this family (npm skipped the optional dependency): one @font-face that
// names the family with no file to download (Next needs at least one), so pages use the fallback fonts.
function fallback(family, id) {
  const recorded = fs.existsSync(FALLBACKS) ? fs.readFileSync(FALLBACKS, "utf8").split("\n") : [];
  if (!recorded.includes(family)) {
    fs.appendFileSync(FALLBACKS, family + "\n");
    console.warn(`launchdeck: no @fontsource/${id} package for the Google font ${family}: pages use the fallback font`);
  }
  return `/* launchdeck: no @fontsource/${id} */\n@font-face {\n  font-family: '${family}';\n  src: local('${family}');\n}\n`;
}

function css(url) {
  const parsed = new URL(url);
  const out = [];
  for (const spec of parsed.searchParams.getAll("family")) {
    const [rawName, axesSpec] = spec.split(":");
    const family = rawName.replace(/\+/g, " ");
    const id = family.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    const dir = path.join(ROOT, id);
    if (!fs.existsSync(path.join(dir, "metadata.json"))) {
      out.push(fallback(family, id));
      continue;
    }
    const meta = JSON.parse(fs.readFileSync(path.join(dir, "metadata.json"), "utf8"));
    const ranges = fs.existsSync(path.join(dir, "unicode.json"))
      ? JSON.parse(fs.readFileSync(path.join(dir, "unicode.json"), "utf8"))
      : {};
    const wanted = []; // [style, weight]
    if (axesSpec) {
      const [keys, tuples] = axesSpec.split("@");
      const names = keys.split(",");
      for (const tuple of (tuples || "").split(";")) {
        const values = tuple.split(",");
        const ital = names.includes("ital") ? values[names.indexOf("ital")] === "1" : false;
        const weightSpec = names.includes("wght") ? values[names.indexOf("wght")] : "400";
        let weights;
        if (weightSpec.includes("..")) {
          const [low, high] = weightSpec.split("..").map(Number);
          weights = meta.weights.filter((w) => w >= low && w <= high);
        } else {
          weights = [Number(weightSpec)];
        }
        for (const w of weights) wanted.push([ital ? "italic" : "normal", w]);
      }
    } else {
      wanted.push(["normal", 400]);
    }
    for (const [style, weight] of wanted) {
      for (const subset of meta.subsets) {
        const file = path.join(dir, "files", `${id}-${subset}-${weight}-${style}.woff2`);
        if (!fs.existsSync(file)) continue;
        out.push(
          `/* ${subset} */\n@font-face {\n  font-family: '${family}';\n  font-style: ${style};\n` +
            `  font-weight: ${weight};\n  font-display: ${parsed.searchParams.get("display") || "swap"};\n` +
            `  src: url(${file}) format('woff2');\n` +
            (ranges[subset] ? `  unicode-range: ${ranges[subset]};\n` : "") +
            "}\n",
        );
      }
    }
  }
  return out.join("");
}

module.exports = new Proxy(
  {},
  {
    get(_target, key) {
      if (typeof key !== "string" || !key.startsWith("https://")) return undefined;
      return css(key);
    },
  },
);
"""


def write_font_mock(workdir: Path) -> str:
    """Writes the CSS module; returns the variable assignment the build script is prefixed with."""
    path = workdir / MOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_MOCK_JS, encoding="utf-8")
    return f'NEXT_FONT_GOOGLE_MOCKED_RESPONSES="$PWD/{MOCK}"'
