"""Files handed to a browser: a private copy per download, never a path inside the data dir.

Gradio serves a returned file from its own cache, and refuses paths in the data directory (see
ui.launch_options), so the handler that decided the caller may have a file copies it out first.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def download_copy(path: str | Path | None) -> str | None:
    """A copy of `path` in a fresh private temp folder (same file name); None stays None."""
    if path is None:
        return None
    source = Path(path)
    folder = Path(tempfile.mkdtemp(prefix="rr-download-"))
    target = folder / source.name
    shutil.copyfile(source, target)
    return str(target)
