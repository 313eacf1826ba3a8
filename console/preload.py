"""Load the browser code of the console's tables, charts and widgets while the sign-in page waits.

Streamlit's front end fetches the code of each kind of element (the data grid, Vega charts, select boxes,
sliders, ...) the first time a page shows one: about 2 MB of JavaScript for a table and a chart, which a
new browser otherwise downloads and compiles during the first visit of Apps, Usage or Pricing. The
sign-in page imports those modules in the background instead, while the person pastes their token, so
every page's first visit finds them loaded. The modules are found by name in Streamlit's own static
folder; a Streamlit release that names them differently only makes first visits slower again."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import streamlit
import streamlit as st

STREAMLIT_JS = Path(streamlit.__file__).parent / "static" / "static" / "js"
# The element modules the pages use, largest first. "embed" is vega-embed, loaded by the first chart.
ELEMENTS = ("DataFrame", "embed", "ArrowVegaLiteChart", "Multiselect", "Selectbox", "Radio", "Checkbox",
            "Slider", "Metric", "Progress", "Table")  # fmt: skip

# Relative to Streamlit's own entry script, so each module gets the very URL the front end imports it by
# (and so is evaluated once); after the sign-in page has drawn, so it never delays it.
SCRIPT = """<script>
(() => {
  const entry = document.querySelector('script[type="module"][src*="/static/js/index."]');
  if (!entry) return;
  const load = () => MODULES.forEach((name) => import(new URL(name, entry.src).href).catch(() => {}));
  if (window.requestIdleCallback) window.requestIdleCallback(load, {timeout: 500});
  else window.setTimeout(load, 100);
})();
</script>"""


@functools.cache
def element_modules() -> tuple[str, ...]:
    """File names of the element modules in the installed Streamlit (one per element, content-hashed)."""
    found = [sorted(STREAMLIT_JS.glob(f"{element}.*.js")) for element in ELEMENTS]
    return tuple(paths[0].name for paths in found if len(paths) == 1)


def preload_elements() -> None:
    modules = element_modules()
    if modules:
        st.html(SCRIPT.replace("MODULES", json.dumps(modules)), unsafe_allow_javascript=True)
