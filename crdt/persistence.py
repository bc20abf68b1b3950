"""Durable store of one replica: an fsynced, checksummed delta log plus atomic snapshots.

Files in the data directory (docs/CRDT.md has the exact bytes):

- `deltas.log`: magic, then frames; one frame per `append` call (group commit: one write,
  one fsync for many records), each frame `[first_seq, [record, ...]]` in msgpack behind
  a header with its length, a CRC32 of the length and a CRC32 of the payload.
- `snapshot`: magic and one frame holding `{"seq": n, "state": ...}`, the state covering
  records 1..n. It is written to a temporary file, fsynced, renamed over the old one and
  the directory fsynced; then the log is cut back to its magic.

`load` ignores (and cuts off) a torn tail, the frame a crash interrupted, which was never
acknowledged, but refuses a damaged frame followed by more data: that is lost durable data.
Records are replayed idempotently (CRDT merge), so a crash between the snapshot rename
and the log cut is harmless; sequence numbers skip those records anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import msgpack

from crdt.errors import CorruptStoreError, PersistenceError

__all__ = ["LOG_MAGIC", "MAX_FRAME_BYTES", "SNAPSHOT_MAGIC", "Recovered", "ReplicaStore"]

LOG_MAGIC = b"AMCPDLG1"
SNAPSHOT_MAGIC = b"AMCPSNP1"
LOG_NAME = "deltas.log"
SNAPSHOT_NAME = "snapshot"
LOCK_NAME = "lock"
MAX_FRAME_BYTES = 64 << 20  # one log frame; a snapshot may use the full u32 length
_HEADER = struct.Struct(">III")  # payload length, crc32(length bytes), crc32(payload)
_LENGTH = struct.Struct(">I")


class Recovered(NamedTuple):
    """What `load` found: the latest snapshot (None if none) and the records after it."""

    snapshot: Any | None
    records: list[Any]


def _frame(payload: bytes) -> bytes:
    length = _LENGTH.pack(len(payload))
    return _HEADER.pack(len(payload), zlib.crc32(length), zlib.crc32(payload)) + payload


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _unpack(payload: bytes, where: str) -> Any:
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises many types; a checksummed frame never should
        raise CorruptStoreError(f"{where}: undecodable ({type(exc).__name__})") from None


def _zeros(data: bytes, start: int) -> bool:
    return data.count(0, start) == len(data) - start


class ReplicaStore:
    """The data directory of one replica; holds an exclusive lock on it while open.

    Call `load()` first (it recovers and positions the log), then `append` and
    `write_snapshot`. Not thread-safe: one writer, as the lock enforces across processes.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise PersistenceError(f"{self.directory} is in use by another process") from None
        self._fd: int | None = None
        self._end = 0
        self._next_seq = 1

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_NAME

    @property
    def snapshot_path(self) -> Path:
        return self.directory / SNAPSHOT_NAME

    def load(self) -> Recovered:
        """Read the snapshot and the records after it; cut a torn log tail off."""
        self._close_log()
        seq, snapshot = self._read_snapshot()
        if not self.log_path.exists():
            _write_atomically(self.log_path, LOG_MAGIC)
        data = self.log_path.read_bytes()
        if data[: len(LOG_MAGIC)] != LOG_MAGIC:
            raise CorruptStoreError(f"{self.log_path}: not an amcp delta log")
        records, end, last_seq = self._scan(data, seq)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND)
        if end < len(data):
            os.ftruncate(fd, end)
            os.fsync(fd)
        self._fd, self._end, self._next_seq = fd, end, max(seq, last_seq) + 1
        return Recovered(snapshot, records)

    def _read_snapshot(self) -> tuple[int, Any | None]:
        path = self.snapshot_path
        if not path.exists():
            return 0, None
        data = path.read_bytes()
        start = len(SNAPSHOT_MAGIC) + _HEADER.size
        if len(data) < start or data[: len(SNAPSHOT_MAGIC)] != SNAPSHOT_MAGIC:
            raise CorruptStoreError(f"{path}: not an amcp snapshot")
        length, length_crc, crc = _HEADER.unpack_from(data, len(SNAPSHOT_MAGIC))
        payload = data[start:]
        if (
            length_crc != zlib.crc32(_LENGTH.pack(length))
            or length != len(payload)
            or crc != zlib.crc32(payload)
        ):
            raise CorruptStoreError(f"{path}: checksum mismatch")
        body = _unpack(payload, str(path))
        if type(body) is not dict or body.keys() != {"seq", "state"}:
            raise CorruptStoreError(f"{path}: not a snapshot body")
        if type(body["seq"]) is not int or body["seq"] < 0:
            raise CorruptStoreError(f"{path}: bad sequence number")
        return body["seq"], body["state"]

    def _scan(self, data: bytes, snapshot_seq: int) -> tuple[list[Any], int, int]:
        """(records after the snapshot, end of the last good frame, last sequence number)."""
        where = str(self.log_path)
        records: list[Any] = []
        offset, size = len(LOG_MAGIC), len(data)
        last_seq = snapshot_seq
        expected = None
        while offset < size:
            if size - offset < _HEADER.size:
                break  # torn header
            length, length_crc, crc = _HEADER.unpack_from(data, offset)
            if length_crc != zlib.crc32(data[offset : offset + 4]) or not (
                0 < length <= MAX_FRAME_BYTES
            ):
                if _zeros(data, offset):
                    break  # a tail the file system extended but never wrote
                raise CorruptStoreError(f"{where}: damaged frame header at byte {offset}")
            end = offset + _HEADER.size + length
            if end > size:
                break  # torn payload
            if crc != zlib.crc32(data[offset + _HEADER.size : end]):
                if end == size or _zeros(data, end):
                    break  # the final frame, never acknowledged
                raise CorruptStoreError(
                    f"{where}: frame at byte {offset} fails its checksum and "
                    f"{size - end} bytes follow it; refusing to drop durable records"
                )
            first, group = self._group(_unpack(data[offset + _HEADER.size : end], where), where)
            if expected is None and first > snapshot_seq + 1:
                raise CorruptStoreError(f"{where}: records {snapshot_seq + 1}..{first - 1} lost")
            if expected is not None and first != expected:
                raise CorruptStoreError(f"{where}: sequence gap at byte {offset}")
            records.extend(group[max(0, snapshot_seq + 1 - first) :])
            expected = first + len(group)
            last_seq = max(last_seq, expected - 1)
            offset = end
        return records, offset, last_seq

    @staticmethod
    def _group(body: Any, where: str) -> tuple[int, list[Any]]:
        if type(body) is not list or len(body) != 2:
            raise CorruptStoreError(f"{where}: frame is not [first_seq, records]")
        first, group = body
        if type(first) is not int or first < 1 or type(group) is not list or not group:
            raise CorruptStoreError(f"{where}: frame is not [first_seq, records]")
        return first, group

    def append(self, records: Sequence[Any]) -> int:
        """Durably append `records` (one frame, one fsync); returns the last sequence number.

        On a write or fsync error the log is cut back and the store must be `load`ed again.
        """
        if self._fd is None:
            raise PersistenceError("call load() before append()")
        if not records:
            return self._next_seq - 1
        try:
            payload = msgpack.packb([self._next_seq, list(records)], use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise PersistenceError(f"record is not msgpack-encodable: {exc}") from None
        if len(payload) > MAX_FRAME_BYTES:
            raise PersistenceError("records exceed one frame; append fewer at a time")
        frame = _frame(payload)
        try:
            _write_all(self._fd, frame)
            os.fsync(self._fd)
        except OSError as exc:
            self._abandon()
            raise PersistenceError(f"cannot append to {self.log_path}: {exc}") from exc
        self._end += len(frame)
        self._next_seq += len(records)
        return self._next_seq - 1

    def _abandon(self) -> None:
        """After a failed write, cut the partial frame (best effort) and stop appending."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):  # if this fails too, load() cuts the torn tail
                os.ftruncate(fd, self._end)
            os.close(fd)

    def write_snapshot(self, snapshot: Any) -> None:
        """Durably replace the snapshot, then cut the log; `snapshot` must reflect every
        record appended so far (it covers them by sequence number)."""
        if self._fd is None:
            raise PersistenceError("call load() before write_snapshot()")
        try:
            payload = msgpack.packb(
                {"seq": self._next_seq - 1, "state": snapshot}, use_bin_type=True
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise PersistenceError(f"snapshot is not msgpack-encodable: {exc}") from None
        if len(payload) > 0xFFFFFFFF:
            raise PersistenceError("snapshot exceeds 4 GiB")
        _write_atomically(self.snapshot_path, SNAPSHOT_MAGIC + _frame(payload))
        try:
            os.ftruncate(self._fd, len(LOG_MAGIC))
            os.fsync(self._fd)
        except OSError as exc:
            self._abandon()
            raise PersistenceError(f"cannot truncate {self.log_path}: {exc}") from exc
        self._end = len(LOG_MAGIC)

    def _close_log(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Close the log and release the directory lock."""
        self._close_log()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def __enter__(self) -> ReplicaStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
