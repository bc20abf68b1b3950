"""Files that hold secrets (keys, passwords, configs that include them): created with mode
0600 and kept in folders of mode 0700, never readable by other users, not even briefly;
and files that running processes re-read (written atomically, re-read when their mtime
moves)."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["FileStamp", "private_folder", "read_guarded", "write_atomic", "write_private"]


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
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:  # what mkdir says of a file where the folder should be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path)) from None
    os.chmod(path, 0o700)  # mkdir leaves an existing folder's mode as it was
    return path


def write_atomic(path: Path, text: str, mode: int = 0o600) -> Path:
    """Replace `path` with `text` in one step (a reader sees the old file or the new one,
    never half of it), fsynced; the temp file is 0600 from its creation, then `mode`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class FileStamp:
    """When a file was last read (its mtime in ns), so a running process re-reads it only
    when another process has replaced it: rotation and revocation without restart."""

    def __init__(self, path: Path | None, mtime_ns: int = 0) -> None:
        self.path = path
        self.mtime_ns = mtime_ns

    def changed(self) -> bool:
        """True if the file's mtime differs from the one read (a missing file: False, the
        last good copy stays in force)."""
        if self.path is None:
            return False
        try:
            return self.path.stat().st_mtime_ns != self.mtime_ns
        except OSError:
            return False


def read_guarded(
    path: Path, what: str, forbidden: int, fix: str, create: str, error: type[Exception]
) -> tuple[bytes, int]:
    """The bytes and mtime (ns) of a key file, or `error` in one line: missing (saying how
    to `create` it), unreadable, or with a `forbidden` mode bit set (saying the `fix`)."""
    try:
        st = path.stat()
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"no {what} at {path}; create one with `{create}`") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    if st.st_mode & forbidden:
        raise error(
            f"{what} {path} is {'accessible' if forbidden & stat.S_IRGRP else 'writable'} by"
            f" group or others (mode {stat.S_IMODE(st.st_mode):o}); run `{fix}`"
        )
    return raw, st.st_mtime_ns
