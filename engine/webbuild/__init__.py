"""Web build: preflight checks, code transformation and the sandboxed build of a generated app.

findings = preflight(app_dir, "local-libsql")          # before anything is provisioned
copy = transform(app_dir, workdir, "local-libsql")      # isolated working copy, source untouched
result = build(copy.workdir, env, timeout=600, memory_mb=2048, log_path=log)
"""

from engine.webbuild.build import BuildResult, build
from engine.webbuild.findings import Finding
from engine.webbuild.preflight import blocking, preflight
from engine.webbuild.targets import Target, parse_target
from engine.webbuild.transform import TransformResult, transform

__all__ = [
    "BuildResult",
    "Finding",
    "Target",
    "TransformResult",
    "blocking",
    "build",
    "parse_target",
    "preflight",
    "transform",
]
