"""Quorum rules: which yes support, out of all registered members, commits a proposal.

Every rule is a monotone test on the yes support, so the tally can decide early: commit once
the yes support passes, reject once it cannot pass even if every silent member votes yes.
Arithmetic is exact (ints where every vote weighs 1, fractions.Fraction for weighted
sums), so no float rounding or summation order can change an outcome. The semantics are
specified in docs/CONSENSUS.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache

from consensus.errors import QuorumSpecError

__all__ = ["QuorumKind", "QuorumRule", "Support", "parse_quorum"]

Support = Fraction | int
"""A yes support or a threshold, exact: an int for counting rules (cheap to add and
compare, several times a decision), a Fraction for weighted sums and fractional counts."""

MAX_SPEC_LENGTH = 64
"""Longer specs are refused outright: a spec is a short config value, never data."""

_INT = re.compile(r"[0-9]+")
_FRACTION = re.compile(r"[0-9]*\.[0-9]+|[0-9]+\.?[0-9]*|[0-9]+/[0-9]+")
_EXPECTED = (
    "expected majority, all, any, an integer N >= 1, a fraction in (0, 1] such as 0.67 "
    "or 2/3, or weighted[:F] with F in (0, 1)"
)


class QuorumKind(StrEnum):
    """The six quorum kinds of the design."""

    MAJORITY = "majority"
    ALL = "all"
    ANY = "any"
    COUNT = "count"
    FRACTION = "fraction"
    WEIGHTED = "weighted"


@dataclass(frozen=True)
class QuorumRule:
    """A parsed quorum spec; `value` is N for COUNT, the fraction for FRACTION and WEIGHTED."""

    kind: QuorumKind
    value: Fraction = Fraction(0)
    # members -> needed: a tally asks for every ballot, with few distinct memberships
    _needed: dict[int, Support] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def needed(self, members: int) -> Support:
        """The yes support to reach (at least, or for WEIGHTED strictly more than) to commit."""
        found = self._needed.get(members)
        if found is None:
            if len(self._needed) >= 64:
                self._needed.clear()
            found = self._needed[members] = self._needed_by(members)
        return found

    def _needed_by(self, members: int) -> Support:
        n = members
        if self.kind is QuorumKind.MAJORITY:
            return n // 2 + 1
        if self.kind is QuorumKind.ALL:
            return max(1, n)
        if self.kind is QuorumKind.ANY:
            return 1
        if self.kind is QuorumKind.COUNT:
            return self.value
        if self.kind is QuorumKind.FRACTION:
            return max(1, math.ceil(self.value * n))
        return self.value * n

    def weight(self, combined: float) -> Support:
        """What one yes vote adds to the support: 1, or its combined score for WEIGHTED."""
        if self.kind is QuorumKind.WEIGHTED:
            return Fraction(combined)
        return 1

    def support(self, yes_combined: list[float]) -> Support:
        """The yes support of these yes votes (their combined scores): the sum of their
        weights, i.e. their count, or for WEIGHTED the exact sum of the scores."""
        if self.kind is QuorumKind.WEIGHTED:
            return sum((Fraction(c) for c in yes_combined), Fraction(0))
        return len(yes_combined)

    def passes(self, support: Support, members: int) -> bool:
        """Whether this yes support commits among `members` registered members."""
        if self.kind is QuorumKind.WEIGHTED:
            return support > self.needed(members)
        return support >= self.needed(members)


def parse_quorum(spec: str) -> QuorumRule:
    """Parse "majority", "all", "any", "3", "0.67", "2/3", "weighted" or "weighted:0.6".

    Case and surrounding blanks are ignored. A bare integer is a count, so "1" means one yes
    vote while "1.0" means all members. Raises QuorumSpecError with a one-line message.
    """
    if not isinstance(spec, str):
        raise QuorumSpecError(f"quorum spec must be a string, got {type(spec).__name__}")
    return _parse(spec)


@lru_cache(maxsize=256)
def _parse(spec: str) -> QuorumRule:
    """parse_quorum for a string; specs recur, and a rule is immutable, so it is cached."""
    if len(spec) > MAX_SPEC_LENGTH:
        raise QuorumSpecError(f"quorum spec longer than {MAX_SPEC_LENGTH} characters")
    text = spec.strip().lower()
    if text in (QuorumKind.MAJORITY, QuorumKind.ALL, QuorumKind.ANY):
        return QuorumRule(QuorumKind(text))
    if text == QuorumKind.WEIGHTED:
        return QuorumRule(QuorumKind.WEIGHTED, Fraction(1, 2))
    if text.startswith("weighted:"):
        value = _fraction(spec, text.removeprefix("weighted:").strip())
        if not 0 < value < 1:
            raise QuorumSpecError(f"weighted threshold must be in (0, 1), got {spec!r}")
        return QuorumRule(QuorumKind.WEIGHTED, value)
    if _INT.fullmatch(text):
        count = int(text)
        if count < 1:
            raise QuorumSpecError(f"quorum count must be >= 1, got {spec!r}")
        return QuorumRule(QuorumKind.COUNT, Fraction(count))
    value = _fraction(spec, text)
    if not 0 < value <= 1:
        raise QuorumSpecError(f"quorum fraction must be in (0, 1], got {spec!r}")
    return QuorumRule(QuorumKind.FRACTION, value)


def _fraction(spec: str, text: str) -> Fraction:
    """Read a decimal or p/q fraction exactly; anything else is a bad spec."""
    if not _FRACTION.fullmatch(text):
        raise QuorumSpecError(f"bad quorum spec {spec!r}: {_EXPECTED}")
    try:
        return Fraction(text)
    except ZeroDivisionError:
        raise QuorumSpecError(f"quorum fraction has a zero denominator: {spec!r}") from None
