"""next/font/google served from the npm registry: the build never reaches Google.

Next.js reads Google's CSS through NEXT_FONT_GOOGLE_MOCKED_RESPONSES when that variable names a module
(and then reads font files from absolute paths). The module written here answers every CSS URL Next asks
for from the `@fontsource/<family>` package of the same family (same weights, styles and subsets, with
their unicode ranges), which the transform adds to package.json. No app module changes.

families = google_font_families(workdir)          # ["Inter", "Geist Mono"]
packages = {fontsource_package(f): "^5" for f in families}
env_prefix = write_font_mock(workdir)             # "NEXT_FONT_GOOGLE_MOCKED_RESPONSES=$PWD/launchdeck/google-fonts.cjs"
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.webbuild.appinfo import read_text, source_files

MOCK = "launchdeck/google-fonts.cjs"
FONTSOURCE_VERSION = "^5"
_IMPORT = re.compile(r"""import\s*\{([^}]*)\}\s*from\s*["'](?:next|@next)/font/google["']""")


def google_font_families(app_dir: Path) -> list[str]:
    """Families the app imports from next/font/google ("Geist_Mono" -> "Geist Mono"), sorted."""
    families = set()
    for path in source_files(app_dir):
        for match in _IMPORT.finditer(read_text(path) or ""):
            for item in match.group(1).split(","):
                name = item.strip().split(" as ")[0].strip()
                if name and name != "type":
                    families.add(name.replace("_", " "))
    return sorted(families)


def fontsource_package(family: str) -> str:
    return "@fontsource/" + re.sub(r"[^a-z0-9]+", "-", family.lower()).strip("-")


_MOCK_JS = r"""// Written by Launchdeck: Google Fonts CSS for next/font/google, served from @fontsource packages.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const ROOT = path.join(__dirname, "..", "node_modules", "@fontsource");

function css(url) {
  const parsed = new URL(url);
  const out = [];
  for (const spec of parsed.searchParams.getAll("family")) {
    const [rawName, axesSpec] = spec.split(":");
    const family = rawName.replace(/\+/g, " ");
    const id = family.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    const dir = path.join(ROOT, id);
    if (!fs.existsSync(path.join(dir, "metadata.json"))) {
      throw new Error(`launchdeck: no @fontsource/${id} package for the Google font ${family}`);
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
