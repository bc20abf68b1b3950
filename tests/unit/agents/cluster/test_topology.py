"""The shape `amcp cluster up` starts: three S5 voters by default, so a majority survives
one lost voter, and `--voters N` setting the S5 count, refused with one line when bad."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.cluster.topology import DEFAULT_AGENTS, choose_agents
from amcp.errors import ConfigError


def test_three_voters_by_default() -> None:
    assert choose_agents(None, None) == DEFAULT_AGENTS
    assert DEFAULT_AGENTS["s5"] == 3


@given(st.integers(1, 64))
def test_voters_sets_the_s5_count_and_keeps_the_rest(n: int) -> None:
    counts = choose_agents(None, str(n))
    assert counts == {**DEFAULT_AGENTS, "s5": n}
    assert DEFAULT_AGENTS["s5"] == 3  # the default itself is left alone


def test_voters_with_agents() -> None:
    assert choose_agents("s1=1", "3") == {"s1": 1, "s5": 3}  # added to the named roles
    assert choose_agents("s1=1,s5=3", "3") == {"s1": 1, "s5": 3}  # the same count agrees
    assert choose_agents("s1=1", None) == {"s1": 1}  # --agents alone is taken as it is


@pytest.mark.parametrize(
    "text, message",
    [
        ("0", "--voters must be 1-64"),
        ("65", "--voters must be 1-64"),
        ("-1", "--voters must be 1-64"),
        ("x", "--voters takes a number"),
        ("2.5", "--voters takes a number"),
        ("", "--voters takes a number"),
    ],
)
def test_bad_voters_is_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as bad:
        choose_agents(None, text)
    assert "\n" not in str(bad.value)


def test_voters_disagreeing_with_agents_is_refused() -> None:
    with pytest.raises(ConfigError, match="--agents starts 2 s5 but --voters says 3"):
        choose_agents("s1=1,s5=2", "3")
