"""Concrete pipelines. Each module exposes ``PIPELINES: dict[str, PipelineFactory]``; the engine
collects them here, plus any plugin modules named in ``LAUNCHDECK_EXTRA_PIPELINES``."""

from __future__ import annotations

import importlib

from engine.runner import PipelineFactory

BUILTIN_MODULES: tuple[str, ...] = (
    "pipelines.web",
    "pipelines.lifecycle",
    "pipelines.mobile",
    "pipelines.desktop",
)


def registry(extra_modules: str = "") -> dict[str, PipelineFactory]:
    found: dict[str, PipelineFactory] = {}
    # A plugin that names a built-in module again is harmless: each module is loaded once.
    names = dict.fromkeys([*BUILTIN_MODULES, *(m.strip() for m in extra_modules.split(",") if m.strip())])
    for module_name in names:
        module = importlib.import_module(module_name)
        for pipeline, factory in getattr(module, "PIPELINES", {}).items():
            if pipeline in found:
                raise RuntimeError(f"pipeline {pipeline!r} is defined twice (again in {module_name})")
            found[pipeline] = factory
    return found
