"""Value checks shared by the consensus records and settings; each raises ConsensusError."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TypeVar

from consensus.errors import ConsensusError

E = TypeVar("E", bound=StrEnum)


def show(value: object) -> str:
    """A short rendering of a bad value for an error message; never raises."""
    if value is None or isinstance(value, str | int | float):
        try:
            text = repr(value)
        except ValueError:  # an int too long to print
            text = f"<{type(value).__name__}>"
        return text if len(text) <= 40 else text[:37] + "..."
    return f"<{type(value).__name__}>"


def text(name: str, value: object, limit: int, *, empty_ok: bool = False) -> str:
    """A string of at most `limit` characters, non-empty unless `empty_ok`."""
    if type(value) is str and (value or empty_ok) and len(value) <= limit:
        return value  # the common case, checked first: records are validated on every hop
    if not isinstance(value, str):
        raise ConsensusError(f"{name} must be a string, got {type(value).__name__}")
    if not value and not empty_ok:
        raise ConsensusError(f"{name} must not be empty")
    if len(value) > limit:
        raise ConsensusError(f"{name} longer than {limit} characters")
    return value


def integer(name: str, value: object, low: int, high: int) -> int:
    """An int (not a bool) in [low, high]."""
    if type(value) is int and low <= value <= high:
        return value
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConsensusError(f"{name} must be an integer in [{low}, {high}], got {show(value)}")
    return value


def real(name: str, value: object) -> float:
    """A finite int or float (not a bool), as a float."""
    if type(value) is float and -math.inf < value < math.inf:
        return value + 0.0  # -0.0 becomes 0.0 (below)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConsensusError(f"{name} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ConsensusError(f"{name} must be finite, got {show(value)}")
    return number + 0.0  # -0.0 becomes 0.0: equal values must have one wire form


def unit(name: str, value: object) -> float:
    """A finite number in [0, 1], as a float."""
    if type(value) is float and 0.0 <= value <= 1.0:
        return value + 0.0
    number = real(name, value)
    if not 0.0 <= number <= 1.0:
        raise ConsensusError(f"{name} must be in [0, 1], got {number!r}")
    return number


def nonnegative(name: str, value: object) -> float:
    """A finite number >= 0, as a float."""
    number = real(name, value)
    if number < 0.0:
        raise ConsensusError(f"{name} must be >= 0, got {number!r}")
    return number


def positive(name: str, value: object) -> float:
    """A finite number > 0, as a float."""
    number = real(name, value)
    if number <= 0.0:
        raise ConsensusError(f"{name} must be > 0, got {number!r}")
    return number


def enum(cls: type[E], name: str, value: object) -> E:
    """The member of a string enum named by `value` (a member or its string value)."""
    if isinstance(value, str):
        try:
            return cls(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in cls)
    raise ConsensusError(f"{name} must be one of {allowed}, got {show(value)}")


MAX_SIG_LENGTH = 64  # an Ed25519 signature; anything longer is refused before it is kept


def signature(name: str, value: object) -> bytes:
    """An identity signature field: bytes, empty (unsigned) or at most MAX_SIG_LENGTH."""
    if type(value) is bytes and len(value) <= MAX_SIG_LENGTH:
        return value
    if not isinstance(value, bytes):
        raise ConsensusError(f"{name} must be bytes, got {type(value).__name__}")
    raise ConsensusError(f"{name} is {len(value)} bytes, at most {MAX_SIG_LENGTH}")


R = TypeVar("R")


def evolve(record: R, **checked: object) -> R:
    """A copy of the frozen dataclass `record` with the fields in `checked` replaced by
    values the caller has just checked. dataclasses.replace would construct it anew and
    validate every field again; on a ballot's path (sign it, stamp a voter's view with the
    time) only these fields change, and the rest were validated when `record` was made."""
    copy = object.__new__(type(record))
    copy.__dict__.update(record.__dict__)
    for name, value in checked.items():
        if name not in copy.__dict__:
            raise ConsensusError(f"{type(record).__name__} has no field {name!r}")
        object.__setattr__(copy, name, value)
    return copy
