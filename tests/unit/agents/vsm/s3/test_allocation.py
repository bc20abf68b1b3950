"""S3's allocation (pure): executors, required and preferred capabilities, load, reviews,
parallel groups, and the conflicts with S4's analysis it reports."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.vsm.s3.allocation import Candidate, Need, allocate

SHELL = frozenset({"shell"})


def cand(id_: str, running: int = 0, **kw) -> Candidate:
    return Candidate(id_, kw.pop("executors", SHELL), running=running, capacity=4, **kw)


def test_the_least_loaded_able_agent_takes_a_step() -> None:
    a = allocate(Need(1, "shell"), [cand("a", 3), cand("b", 1), cand("c", 2)])
    assert a.agents == ("b",) and a.groups == ((0,),) and not a.conflicts


def test_only_agents_with_the_executor_and_not_excluded() -> None:
    pool = [cand("a", executors=frozenset({"cli"})), cand("b"), cand("c")]
    assert allocate(Need(1, "cli"), pool).agents == ("a",)
    assert allocate(Need(1, "shell", exclude=frozenset({"b"})), pool).agents == ("c",)
    none = allocate(Need(1, "python"), pool)
    assert none.agents == () and "no live S1 agent runs python" in none.notes[0]


def test_preferred_capabilities_come_before_load() -> None:
    pool = [cand("a"), cand("b", 3, capabilities=frozenset({"database"}))]
    assert allocate(Need(1, "shell", preferred=("database",)), pool).agents == ("b",)


def test_a_missing_required_capability_is_a_conflict() -> None:
    a = allocate(Need(1, "shell", required=("gpu",)), [cand("a")])
    assert a.agents == ("a",)
    assert [c.kind for c in a.conflicts] == ["capability"] and "gpu" in a.conflicts[0].s4


def test_agents_under_review_are_avoided_when_there_is_another() -> None:
    pool = [cand("a", under_review=True), cand("b", 2)]
    a = allocate(Need(1, "shell"), pool)
    assert a.agents == ("b",)
    alone = allocate(Need(1, "shell"), [cand("a", under_review=True)])
    assert alone.agents == ("a",) and "under review" in alone.notes[0]


def test_parallel_steps_spread_over_agents() -> None:
    a = allocate(Need(3, "shell", parallel=True), [cand("a"), cand("b")])
    assert a.groups == ((0, 1, 2),) and a.parallel
    assert sorted(a.agents) == ["a", "a", "b"]
    serial = allocate(Need(3, "shell"), [cand("a"), cand("b")])
    assert serial.groups == ((0,), (1,), (2,)) and not serial.parallel


def test_parallelising_against_s4s_order_is_a_conflict() -> None:
    a = allocate(Need(2, "shell", parallelise=True), [cand("a"), cand("b")])
    assert a.parallel and [c.kind for c in a.conflicts] == ["ordering"]
    ordered = a.in_order()
    assert ordered.groups == ((0,), (1,)) and ordered.agents == a.agents
    agreed = allocate(Need(2, "shell", parallel=True, parallelise=True), [cand("a")])
    assert not agreed.conflicts


loads = st.lists(st.integers(0, 8), min_size=1, max_size=6)


@given(loads, st.integers(1, 10))
def test_allocation_is_deterministic_and_balanced(running, steps) -> None:
    pool = [cand(f"s1-{i}", r) for i, r in enumerate(running)]
    first = allocate(Need(steps, "shell", parallel=True), pool)
    assert first == allocate(Need(steps, "shell", parallel=True), list(reversed(pool)))
    assert len(first.agents) == steps
    given_to = {c.id: first.agents.count(c.id) for c in pool}
    after = [c.running + given_to[c.id] for c in pool]
    # no step went to an agent that ends up more than one step busier than the least busy
    for c in pool:
        if given_to[c.id]:
            assert c.running + given_to[c.id] - 1 <= min(after)
