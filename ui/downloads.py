"""Files handed to a browser: a private copy per download, never a path inside the data dir.

Gradio serves a returned file from its own cache, and refuses paths in the data directory (see
ui.launch_options), so the handler that decided the caller may have a file copies it out first.
Gradio has copied a returned file into its cache by the time the next download is asked for, so
each new copy removes the copies older than `MAX_AGE_S`: the temp folder does not grow with use.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

PREFIX = "rr-download-"
MAX_AGE_S = 600.0


def download_copy(path: str | Path | None) -> str | None:
    """A copy of `path` in a fresh private temp folder (same file name); None stays None."""
    if path is None:
        return None
    remove_old_copies()
    source = Path(path)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    target = folder / source.name
    shutil.copyfile(source, target)
    return str(target)


def remove_old_copies(max_age_s: float = MAX_AGE_S) -> int:
    """Delete earlier download copies older than `max_age_s`; how many folders went."""
    cutoff = time.time() - max_age_s
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)
                removed += 1
        except OSError:  # another process removed it first, or it is not ours to remove
            continue
    return removed
