"""Callables that other packages register under an entry-point group, found by name: S1's
Python executors (`amcp.executors`) and hooks (`amcp.hooks`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

__all__ = ["load_callable"]


@functools.cache
def load_callable(group: str, name: str, what: str = "entry point") -> Callable[..., Any]:
    """The callable registered as `name` in `group`, looked up once (scanning entry points
    is slow); ValueError naming the known ones if there is none, or it is not callable."""
    for ep in entry_points(group=group):
        if ep.name == name:
            target = ep.load()
            if callable(target):
                return target
            raise ValueError(f"entry point {name} ({ep.value}) is not callable")
    known = ", ".join(sorted(ep.name for ep in entry_points(group=group))) or "none"
    raise ValueError(f"no {what} {name!r} in the {group} entry points; known: {known}")
