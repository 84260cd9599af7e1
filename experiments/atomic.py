"""Atomic file writes: readers (and a resumed run) see the old file or the new one, never half.

The text goes to a temporary file beside the target, is fsync'd, then renamed over it; the
directory is fsync'd too, so the rename survives a machine crash.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """Replaces `path` with `text` atomically and durably; no temporary file is left behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only still there if something failed before the rename
    # Makes the rename durable; not every platform lets a directory be opened: best effort.
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json_atomic(path: Path, value: object) -> None:
    """Writes `value` as indented JSON, atomically and durably (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")
