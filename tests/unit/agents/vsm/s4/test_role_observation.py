"""How S4 watches the cluster (issue 13, point 2): its subscriptions match no subject
anyone sends requests to, so NATS can still answer "no responders"; the request traffic
it cannot see on the bus comes from the agents' reported totals, each counted once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.runtime.subjects import AgentSubjects
from agents.vsm.s4.role import OBSERVED, ReportedRates
from amcp.subjects import Subjects
from consensus.subjects import ConsensusSubjects


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` one token, `>` one or more trailing tokens."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or token not in ("*", have[i]):
            return False
    return len(want) == len(have)


def test_s4_observes_no_request_subject_and_the_published_ones() -> None:
    subjects = Subjects("prod")
    agents = AgentSubjects(subjects)
    observed = [subjects.area(*tokens) for tokens in OBSERVED]
    requests = [
        agents.call("worker-1"),
        agents.role("s1"),
        agents.any,
        subjects.area("ctx", "boot", "durable"),
        subjects.area("ctx", "boot", "any"),
        subjects.area("ctx", "rep", "m0"),
        agents.audit("worker-1"),  # JetStream acknowledges it: a request to the stream
    ]
    assert not [(p, s) for p in observed for s in requests if matches(p, s)]
    votes = ConsensusSubjects(subjects)
    published = [
        agents.heartbeat("worker-1"),
        subjects.area("ctx", "delta"),
        subjects.area("ctx", "hello"),
        votes.propose,
        votes.ballot("tok"),
    ]
    assert all(any(matches(p, s) for p in observed) for s in published)


def test_a_reported_burst_is_spread_over_the_next_interval() -> None:
    rates = ReportedRates(0.0)
    rates.report("a", {"calls": 100}, 0.0)
    rates.report("a", {"calls": 110}, 1.0)  # 10 calls in the last second
    rates.take(1.0)
    ticks = [dict(rates.take(1.0 + 0.1 * n)) for n in range(1, 11)]
    assert [t.get("calls", 0) for t in ticks] == [1] * 10
    assert rates.take(5.0) == []  # paid: nothing more until the next report


def test_a_restarted_agent_counting_from_zero_adds_nothing_negative() -> None:
    rates = ReportedRates(0.0)
    rates.report("a", {"calls": 50}, 0.0)
    rates.report("a", {"calls": 3}, 1.0)
    assert rates.take(3.0) == []


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.floats(0.05, 2.0),
            st.integers(0, 500),
            st.integers(0, 3),
        ),
        max_size=40,
    )
)
def test_every_reported_message_is_taken_once(steps) -> None:
    """Whatever the heartbeat timing and the takes between them, the counts taken add up
    to what the totals grew by (within the fraction still carried)."""
    rates = ReportedRates(0.0)
    now, totals, grown, taken = 0.0, {"a": 0, "b": 0}, 0, 0
    for agent in totals:
        rates.report(agent, {"calls": 0}, now)
    for agent, dt, more, takes in steps:
        for _ in range(takes):
            now += dt / (takes + 1)
            taken += sum(n for _, n in rates.take(now))
        now += dt / (takes + 1)
        totals[agent] += more
        grown += more
        rates.report(agent, {"calls": totals[agent]}, now)
    taken += sum(n for _, n in rates.take(now + 1e6))
    assert grown - 1 <= taken <= grown
