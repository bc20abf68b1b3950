"""The failure policy: what follows a failed attempt."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.vsm.delegation.policy import FailurePolicy, Next, next_move


def moves(policy: FailurePolicy, retries: int, alternative: bool) -> list[Next]:
    """The moves a subtask makes when every attempt fails, until it is skipped."""
    out: list[Next] = []
    failures, on_alt = 0, False
    while True:
        failures += not on_alt
        move = next_move(
            policy,
            failures=failures,
            retries=retries,
            has_alternative=alternative,
            on_alternative=on_alt,
        )
        out.append(move)
        if move is Next.SKIP:
            return out
        on_alt = on_alt or move is Next.ALTERNATIVE


def test_each_policy_in_order() -> None:
    assert moves(FailurePolicy.RETRY, 2, True) == [Next.RETRY, Next.RETRY, Next.SKIP]
    assert moves(FailurePolicy.SKIP, 2, True) == [Next.SKIP]
    assert moves(FailurePolicy.ALTERNATIVE, 2, True) == [Next.ALTERNATIVE, Next.SKIP]
    assert moves(FailurePolicy.ALTERNATIVE, 2, False) == [Next.SKIP]


@given(st.sampled_from(FailurePolicy), st.integers(0, 20), st.booleans())
def test_every_policy_ends_in_a_skip(policy: FailurePolicy, retries: int, alt: bool) -> None:
    made = moves(policy, retries, alt)
    assert made[-1] is Next.SKIP
    assert made.count(Next.RETRY) == (retries if policy is FailurePolicy.RETRY else 0)
    assert made.count(Next.ALTERNATIVE) == int(policy is FailurePolicy.ALTERNATIVE and alt)
