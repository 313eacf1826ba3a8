"""Process groups started on behalf of a pipeline step, by the thread that runs the step: when the step
passes its timeout the runner kills them (and so everything they spawned) before the step's undo runs,
so a timed-out build or import cannot keep writing behind the undo (review M2)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

_groups: dict[int, set[int]] = {}
_lock = threading.Lock()


@contextlib.contextmanager
def tracked(pgid: int) -> Iterator[None]:
    """Record ``pgid`` (a child started with ``start_new_session``) under the current thread."""
    ident = threading.get_ident()
    with _lock:
        _groups.setdefault(ident, set()).add(pgid)
    try:
        yield
    finally:
        with _lock:
            groups = _groups.get(ident)
            if groups is not None:
                groups.discard(pgid)
                if not groups:
                    _groups.pop(ident, None)


def kill_for_thread(ident: int | None) -> int:
    """SIGKILL every process group recorded under thread ``ident``. Returns how many."""
    if ident is None:
        return 0
    with _lock:
        groups = list(_groups.get(ident, ()))
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return len(groups)
