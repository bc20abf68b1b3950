"""Rules as data: the TOML files S4 and S5 read, shipped in agents/data and extendable.

A packaged file holds the defaults; files named in an environment variable (paths joined
with the OS path separator) extend them: their lists of rules are appended, their tables
merged key by key, their plain values replace the defaults. Errors name the file and the
key, so a bad rules file is refused at start rather than half applied.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from amcp.errors import ConfigError

__all__ = ["compile_pattern", "load_rules", "merge"]


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` over `base`: lists appended, tables merged, other values replaced."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, list) and isinstance(value, list):
            out[key] = [*old, *value]
        elif isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = merge(old, value)
        else:
            out[key] = value
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rules file {path} is not valid TOML: {exc}") from None


def load_rules(name: str, env_var: str, extra: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The packaged `agents/data/<name>` merged with the files of `$env_var`, then `extra`."""
    text = resources.files("agents").joinpath("data", name).read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    paths = [Path(p) for p in os.environ.get(env_var, "").split(os.pathsep) if p]
    for path in [*paths, *extra]:
        doc = merge(doc, _read(path))
    return doc


def compile_pattern(pattern: Any, where: str) -> re.Pattern[str]:
    """A case-insensitive regular expression from a rules file; ConfigError if it is not."""
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{where}: pattern must be a non-empty string")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"{where}: bad pattern {pattern!r}: {exc}") from None
