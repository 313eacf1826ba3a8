"""Where the corpus of real generated apps is: ``LAUNCHDECK_CORPUS``, else ``../shared/corpus`` beside this
checkout, else the workplace's ``/work/shared/corpus`` (a clean clone elsewhere, as CI makes)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def corpus_dir() -> Path:
    candidates = [Path(p) for p in [os.environ.get("LAUNCHDECK_CORPUS")] if p]
    candidates += [ROOT.parent / "shared" / "corpus", Path("/work/shared/corpus")]
    for candidate in candidates:
        if (candidate / "corpus.json").is_file():
            return candidate
    raise FileNotFoundError(
        "the corpus of real apps is not here: set LAUNCHDECK_CORPUS to a folder holding corpus.json "
        f"(looked in {', '.join(map(str, candidates))})"
    )


CORPUS = corpus_dir()
