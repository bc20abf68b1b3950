"""MCP tool names for agent tools (pure): `<role>__<tool>`, as MCP clients accept them.

Clients such as Claude Code refuse a name outside `[A-Za-z0-9_-]{1,64}` and then drop the
whole server, so every name is mapped: dots and dashes (and anything else) to `_`, cut to
64 characters. Mapping can make two tools one name (`s1__a.b` and `s1__a-b`); names are
then made unique deterministically: the tool whose name needed no mapping keeps the plain
name (else the first in sorted order), the others get a suffix from a hash of their
original name, so a name does not change when other tools come and go.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = ["MAX_NAME", "NAME_PATTERN", "base_name", "mcp_names"]

MAX_NAME = 64
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_OTHER = re.compile(r"[^A-Za-z0-9_]")  # dashes too: the issue maps them with the dots
_SEP = "__"

Pair = tuple[str, str]  # (role, tool name on the agent)


def _digest(pair: Pair) -> str:
    return hashlib.sha256(f"{pair[0]}/{pair[1]}".encode()).hexdigest()


def _suffixed(name: str, suffix: str) -> str:
    return f"{name[: MAX_NAME - len(suffix) - 1]}_{suffix}"


def base_name(role: str, tool: str) -> str:
    """The name before collisions are resolved: mapped, and if too long cut with a hash
    of the whole so that long names sharing a prefix stay apart."""
    name = f"{_OTHER.sub('_', role) or '_'}{_SEP}{_OTHER.sub('_', tool) or '_'}"
    if len(name) <= MAX_NAME:
        return name
    return _suffixed(name, _digest((role, tool))[:8])


def mcp_names(pairs: Iterable[Pair]) -> dict[Pair, str]:
    """A distinct valid MCP name for each (role, tool), the same for the same set."""
    unique = sorted(set(pairs))
    bases = {p: base_name(*p) for p in unique}
    owner: dict[str, Pair] = {}
    # whoever's name needed no mapping claims the plain name first, then sorted order
    for p in sorted(unique, key=lambda p: (bases[p] != f"{p[0]}{_SEP}{p[1]}", p)):
        owner.setdefault(bases[p], p)
    taken = set(owner)  # every plain name is reserved, so no suffixed name takes one
    names: dict[Pair, str] = {}
    for p in unique:
        name = bases[p]
        if owner[name] != p:
            digest, n = _digest(p), 8
            while (candidate := _suffixed(name, digest[:n])) in taken and n < 40:
                n += 1
            count = 2  # a 256-bit hash that collides: count on, still deterministic
            while candidate in taken:
                candidate, count = _suffixed(name, f"{digest[:8]}{count}"), count + 1
            name = candidate
            taken.add(name)
        names[p] = name
    return names
