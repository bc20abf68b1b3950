"""Quorum specs: parsing, bad specs, and the support each rule needs."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.errors import QuorumSpecError
from consensus.quorum import QuorumKind, QuorumRule, parse_quorum


@pytest.mark.parametrize(
    ("spec", "kind", "value"),
    [
        ("majority", QuorumKind.MAJORITY, Fraction(0)),
        ("  MAJORITY ", QuorumKind.MAJORITY, Fraction(0)),
        ("all", QuorumKind.ALL, Fraction(0)),
        ("any", QuorumKind.ANY, Fraction(0)),
        ("3", QuorumKind.COUNT, Fraction(3)),
        ("1", QuorumKind.COUNT, Fraction(1)),
        ("0.67", QuorumKind.FRACTION, Fraction(67, 100)),
        (".5", QuorumKind.FRACTION, Fraction(1, 2)),
        ("2/3", QuorumKind.FRACTION, Fraction(2, 3)),
        ("1.0", QuorumKind.FRACTION, Fraction(1)),
        ("weighted", QuorumKind.WEIGHTED, Fraction(1, 2)),
        ("weighted:0.6", QuorumKind.WEIGHTED, Fraction(3, 5)),
        ("Weighted: 2/3", QuorumKind.WEIGHTED, Fraction(2, 3)),
    ],
)
def test_parse_good_specs(spec: str, kind: QuorumKind, value: Fraction) -> None:
    assert parse_quorum(spec) == QuorumRule(kind, value)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "bad quorum spec"),
        ("   ", "bad quorum spec"),
        ("most", "bad quorum spec"),
        ("majority!", "bad quorum spec"),
        ("0", "count must be >= 1"),
        ("-1", "bad quorum spec"),
        ("1e3", "bad quorum spec"),
        ("0.0", "fraction must be in (0, 1]"),
        ("1.5", "fraction must be in (0, 1]"),
        ("3/2", "fraction must be in (0, 1]"),
        ("1/0", "zero denominator"),
        ("2/3/4", "bad quorum spec"),
        ("1_000", "bad quorum spec"),
        ("weighted:", "bad quorum spec"),
        ("weighted:x", "bad quorum spec"),
        ("weighted:0", "weighted threshold must be in (0, 1)"),
        ("weighted:1", "weighted threshold must be in (0, 1)"),
        ("weighted:1.0", "weighted threshold must be in (0, 1)"),
        ("x" * 65, "longer than 64"),
    ],
)
def test_bad_specs_raise_one_line(spec: str, fragment: str) -> None:
    with pytest.raises(QuorumSpecError) as info:
        parse_quorum(spec)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize("spec", [3, None, 0.5, b"majority"])
def test_non_string_spec(spec: object) -> None:
    with pytest.raises(QuorumSpecError, match="must be a string"):
        parse_quorum(spec)  # type: ignore[arg-type]


@given(st.text(max_size=70))
def test_parse_raises_only_quorum_spec_error(spec: str) -> None:
    try:
        parse_quorum(spec)
    except QuorumSpecError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize(
    ("spec", "needed"),
    [
        ("majority", [1, 1, 2, 2, 3, 3, 4]),
        ("all", [1, 1, 2, 3, 4, 5, 6]),
        ("any", [1, 1, 1, 1, 1, 1, 1]),
        ("3", [3, 3, 3, 3, 3, 3, 3]),
        ("0.67", [1, 1, 2, 3, 3, 4, 5]),
        ("2/3", [1, 1, 2, 2, 3, 4, 4]),
        ("0.5", [1, 1, 1, 2, 2, 3, 3]),
        ("1.0", [1, 1, 2, 3, 4, 5, 6]),
    ],
)
def test_needed_counts_for_0_to_6_members(spec: str, needed: list[int]) -> None:
    rule = parse_quorum(spec)
    assert [rule.needed(n) for n in range(7)] == needed


def test_counting_rules_need_at_least_and_weight_one() -> None:
    rule = parse_quorum("majority")
    assert rule.weight(0.1) == 1
    assert not rule.passes(Fraction(2), 4)
    assert rule.passes(Fraction(3), 4)


def test_weighted_needs_strictly_more_than_threshold_of_members() -> None:
    rule = parse_quorum("weighted")
    assert rule.needed(4) == 2
    assert rule.weight(0.25) == Fraction(1, 4)
    assert not rule.passes(Fraction(2), 4)
    assert rule.passes(Fraction(2) + Fraction(1, 10**9), 4)
    assert not rule.passes(Fraction(0), 0)


SPECS = ["majority", "all", "any", "2", "0.67", "2/3", "weighted", "weighted:0.8"]


@given(st.sampled_from(SPECS), st.integers(0, 50), st.fractions(0, 60), st.fractions(0, 10))
def test_passes_is_monotone_in_support(
    spec: str, members: int, low: Fraction, extra: Fraction
) -> None:
    rule = parse_quorum(spec)
    if rule.passes(low, members):
        assert rule.passes(low + extra, members)


@given(
    st.sampled_from(SPECS),
    st.lists(st.floats(0, 1, allow_nan=False), max_size=9),
)
def test_support_is_the_exact_sum_of_the_yes_weights(spec: str, combined: list[float]) -> None:
    rule = parse_quorum(spec)
    assert rule.support(combined) == sum((rule.weight(c) for c in combined), Fraction(0))


def test_a_spec_that_is_not_a_string_is_a_spec_error_even_unhashable() -> None:
    for bad in ([1], {"a": 1}, 3, None):
        with pytest.raises(QuorumSpecError):
            parse_quorum(bad)  # type: ignore[arg-type]
