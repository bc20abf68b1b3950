"""Counting messages by subject family: bounded labels whatever the subjects."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from amcp.batching import subject_family
from amcp.familycounts import INBOX_FAMILY, FamilyCounts, family_of

token = st.text("abcxyz019-_", min_size=1, max_size=6)
subjects = st.lists(token, min_size=1, max_size=6).map(".".join)
amcp_subjects = st.tuples(token, subjects).map(lambda t: f"amcp.{t[0]}.{t[1]}")


def test_families_of_subjects_inboxes_and_patterns() -> None:
    assert family_of("tasks.s1.result") == "tasks.s1"
    assert family_of("amcp.prod.agents.call.s1-abc") == "amcp.prod.agents.call"
    assert family_of("_INBOX.Xyz.17") == INBOX_FAMILY
    assert family_of("amcp.prod.ctx.rep.>") == family_of("amcp.prod.ctx.rep.s1-abc")
    assert family_of("amcp.prod.agents.hb.*") == "amcp.prod.agents.hb"
    assert family_of("tasks.*") == "tasks" and family_of(">") == ">"


@given(st.one_of(subjects, amcp_subjects))
def test_a_pattern_over_a_family_counts_in_that_family(subject: str) -> None:
    family = subject_family(subject)
    assert family_of(subject) == family
    assert family_of(f"{family}.>") == family
    assert family_of(f"{family}.*") == family


@given(st.lists(st.one_of(subjects, amcp_subjects, token.map(lambda t: f"_INBOX.{t}.1"))))
def test_counts_add_up_per_family(sent: list[str]) -> None:
    counts = FamilyCounts()
    for subject in sent:
        counts.add(subject)
    expected: dict[str, int] = {}
    for subject in sent:
        expected[family_of(subject)] = expected.get(family_of(subject), 0) + 1
    assert counts.counts == expected


def test_many_subjects_keep_the_cache_bounded_and_the_counts_whole() -> None:
    counts = FamilyCounts()
    for i in range(10_000):
        counts.add(f"amcp.c.agents.call.agent{i}")
        counts.add(f"_INBOX.abc.{i}")
    counts.add("amcp.c.agents.call.agent3", 5)
    assert counts.counts == {"amcp.c.agents.call": 10_005, INBOX_FAMILY: 10_000}
    assert len(counts._family) <= 4096
