"""The value domain of the CRDTs and the strict checks every wire form goes through.

Values held in registers, maps and sets are None, bool, int (64-bit range), float (not
NaN), str, bytes and lists/dicts (str keys) of those, nested at most MAX_DEPTH deep. They
are normalized on entry (tuples become lists, dict keys sorted, fresh containers) so the
canonical msgpack bytes of a state depend only on the state: that is what digests hash.
"""

from __future__ import annotations

from typing import Any

import msgpack

from crdt.errors import CrdtDecodeError, CrdtError

__all__ = [
    "MAX_COUNT",
    "MAX_DEPTH",
    "MAX_NAME_CHARS",
    "as_array",
    "as_count",
    "as_map",
    "as_name",
    "copy_value",
    "normalize",
    "pack",
]

MAX_DEPTH = 8
MAX_NAME_CHARS = 128
MAX_COUNT = (1 << 64) - 1  # largest unsigned integer msgpack carries
_MIN_INT = -(1 << 63)


def pack(wire: Any) -> bytes:
    """Canonical bytes of a wire value (its dicts are already built in sorted key order)."""
    return msgpack.packb(wire, use_bin_type=True)


def _utf8(text: str, error: type[CrdtError]) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise error("string is not valid UTF-8 (lone surrogate)") from None


def normalize(value: Any, error: type[CrdtError], depth: int = 0) -> Any:
    """A fresh, canonical copy of `value`, or `error` when it is outside the value domain."""
    kind = type(value)
    if value is None or kind is bool or kind is bytes:
        return value
    if kind is str:
        _utf8(value, error)
        return value
    if kind is int:
        if not _MIN_INT <= value <= MAX_COUNT:
            raise error("integer outside the 64-bit range")
        return value
    if kind is float:
        if value != value:
            raise error("NaN is not a valid value (it is not equal to itself)")
        return value
    if kind is not list and kind is not tuple and kind is not dict:
        raise error(f"unsupported value type {kind.__name__}")
    if depth >= MAX_DEPTH:
        raise error(f"value nested deeper than {MAX_DEPTH}")
    if kind is dict:
        items = []
        for key, item in value.items():
            if type(key) is not str:
                raise error("dict keys inside values must be strings")
            _utf8(key, error)
            items.append((key, normalize(item, error, depth + 1)))
        items.sort(key=lambda pair: pair[0])
        return dict(items)
    return [normalize(item, error, depth + 1) for item in value]


def copy_value(value: Any) -> Any:
    """A copy the caller may mutate without touching CRDT state (scalars are shared)."""
    kind = type(value)
    if kind is list:
        return [copy_value(item) for item in value]
    if kind is dict:
        return {key: copy_value(item) for key, item in value.items()}
    return value


def as_name(value: Any, what: str, error: type[CrdtError] = CrdtDecodeError) -> str:
    """A replica id, key or field name: a non-empty UTF-8 string of at most 128 chars."""
    if type(value) is not str or not 0 < len(value) <= MAX_NAME_CHARS:
        raise error(f"{what} must be a non-empty string of at most {MAX_NAME_CHARS} chars")
    _utf8(value, error)
    return value


def as_count(value: Any, what: str) -> int:
    """A positive counter entry or dot counter that msgpack can carry."""
    if type(value) is not int or not 0 < value <= MAX_COUNT:
        raise CrdtDecodeError(f"{what} must be an integer in [1, 2**64-1]")
    return value


def as_array(value: Any, what: str, size: int | None = None) -> list[Any] | tuple[Any, ...]:
    """A list (or tuple), of exactly `size` items when given."""
    if type(value) is not list and type(value) is not tuple:
        raise CrdtDecodeError(f"{what} must be an array")
    if size is not None and len(value) != size:
        raise CrdtDecodeError(f"{what} must have {size} items")
    return value


def as_map(value: Any, what: str, keys: frozenset[str] | None = None) -> dict[Any, Any]:
    """A dict; with `keys`, exactly those keys."""
    if type(value) is not dict:
        raise CrdtDecodeError(f"{what} must be a map")
    if keys is not None and value.keys() != keys:
        raise CrdtDecodeError(f"{what} must have exactly the keys {sorted(keys)}")
    return value
