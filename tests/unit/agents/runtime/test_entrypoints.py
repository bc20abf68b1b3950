"""Callables found by name in an entry-point group (the installed package's own)."""

from __future__ import annotations

import pytest

from agents.runtime.entrypoints import load_callable
from agents.vsm.s1.executors import noop


def test_a_registered_callable_is_found() -> None:
    assert load_callable("amcp.executors", "noop") is noop


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"no hook 'nope' in the amcp.executors .*known: .*noop"):
        load_callable("amcp.executors", "nope", "hook")
    with pytest.raises(ValueError, match="known: none"):
        load_callable("amcp.no-such-group", "x")
