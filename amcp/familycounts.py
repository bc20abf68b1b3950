"""Messages per subject family: what a bus sent, for metrics that operators graph.

Metrics are labelled by family ("tasks.s1", "amcp.prod.agents.call"), never by raw subject:
subjects name agents, tasks and reply inboxes, so raw labels would grow without bound.
Counting runs on every publish, so it is one cached lookup and one add; the family of a
subject is derived once (the cache is bounded) and reply inboxes are one family.
"""

from __future__ import annotations

from amcp.batching import subject_family
from amcp.message import INBOX_PREFIX

__all__ = ["INBOX_FAMILY", "FamilyCounts", "family_of"]

INBOX_FAMILY = "_INBOX"
"""The family of every reply inbox (each request has its own subject)."""
_WILDCARDS = ("*", ">")
_CACHE_LIMIT = 4096  # distinct subjects whose family is remembered


def family_of(subject: str) -> str:
    """The family of a subject or a subscription pattern: `subject_family`, with reply
    inboxes as one family and trailing wildcards dropped ("amcp.c.audit.>" is the family
    "amcp.c.audit" that its messages count in when sent)."""
    if subject.startswith(INBOX_PREFIX):
        return INBOX_FAMILY
    tokens = subject_family(subject).split(".")
    while tokens and tokens[-1] in _WILDCARDS:
        tokens.pop()
    return ".".join(tokens) or ">"


class FamilyCounts:
    """A count of messages per family, fed subject by subject."""

    __slots__ = ("_family", "counts")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._family: dict[str, str] = {}

    def add(self, subject: str, n: int = 1) -> None:
        family = self._family.get(subject) or self._learn(subject)
        counts = self.counts
        counts[family] = counts.get(family, 0) + n

    def _learn(self, subject: str) -> str:
        family = family_of(subject)
        if family != INBOX_FAMILY:  # one subject per request: never worth remembering
            if len(self._family) >= _CACHE_LIMIT:
                self._family.clear()
            self._family[subject] = family
        return family
