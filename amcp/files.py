"""Files that hold secrets (keys, passwords, configs that include them): created with mode
0600 and kept in folders of mode 0700, never readable by other users, not even briefly."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_folder", "write_private"]


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path` (created or truncated) with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode on O_TRUNC
    return path


def private_folder(path: Path) -> Path:
    """Create `path` (and its parents) if needed; the folder itself ends up mode 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)  # mkdir leaves an existing folder's mode as it was
    return path
