"""Download copies: private, outside the data dir, and cleaned up as new ones are made."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ui.downloads import PREFIX, download_copy, remove_old_copies


def test_copies_are_private_and_old_ones_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    source = tmp_path / "data" / "export.jsonl"
    source.parent.mkdir()
    source.write_text('{"a": 1}\n')
    first = Path(download_copy(source))
    assert first.read_text() == source.read_text() and first.parent.name.startswith(PREFIX)
    assert first.parent.parent == tmp_path / "tmp" and oct(first.parent.stat().st_mode)[-3:] == "700"
    old = time.time() - 3600
    os.utime(first.parent, (old, old))
    second = Path(download_copy(source))
    assert not first.exists() and second.exists()  # the hour-old copy went, the new one stays
    assert remove_old_copies(max_age_s=3600) == 0 and second.exists()
    assert download_copy(None) is None
