"""S2's detection and damping (pure): contention serialised, a retry loop backed off then
escalated, a resource flipped back and forth frozen and escalated; strict thresholds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.vsm.s2.arbiter import STRICT, OscillationArbiter, S2Settings


def claim(c: OscillationArbiter, holder: str, now: float, *, work: str = "w",
          attempt: str | None = None, resource: str | None = "r", **kw):  # fmt: skip
    return c.claim(holder=holder, fingerprint=work, attempt=attempt or holder, now=now,
                   lease=10.0, resource=resource, **kw)  # fmt: skip


def test_two_steps_on_one_resource_are_serialised_and_counted_once() -> None:
    c = OscillationArbiter()
    assert claim(c, "t1", 0.0).decision == "grant"
    waiting = claim(c, "t2", 0.1, work="v")
    assert waiting.decision == "wait" and waiting.oscillation == "contention"
    assert "held by t1" in waiting.reason and 0 < waiting.delay <= 0.05
    again = claim(c, "t2", 0.2, work="v")
    assert again.decision == "wait" and again.oscillation is None  # the same wait
    c.release(holder="t1", resource="r", now=0.3)
    assert claim(c, "t2", 0.4, work="v").decision == "grant"


def test_a_crashed_holder_cannot_block_past_its_lease() -> None:
    c = OscillationArbiter()
    assert claim(c, "t1", 0.0).decision == "grant"
    assert claim(c, "t2", 9.9, work="v").decision == "wait"
    assert claim(c, "t2", 10.0, work="v").decision == "grant"


def test_the_same_work_retried_backs_off_then_escalates() -> None:
    c = OscillationArbiter(S2Settings(backoff_at=3, escalate_at=5))
    rulings = [claim(c, f"h{n}", float(n), resource=None) for n in range(4)]
    assert [r.decision for r in rulings] == ["grant", "grant", "wait", "wait"]
    assert [r.oscillation for r in rulings] == [None, None, "retry_loop", None]
    assert rulings[3].delay > rulings[2].delay  # exponential
    # an attempt that waited its backoff out may go; asking early it waits on
    assert claim(c, "h3", 3.0 + rulings[3].delay / 2, resource=None).decision == "wait"
    assert claim(c, "h3", 3.0 + rulings[3].delay, resource=None).decision == "grant"
    later = [claim(c, f"h{n}", float(n), resource=None) for n in (4, 5)]
    assert [r.decision for r in later] == ["escalate", "escalate"]
    assert "attempted 5 times" in later[0].reason and later[0].oscillation is None


def test_retries_outside_the_window_are_forgotten() -> None:
    c = OscillationArbiter(S2Settings(window=10, backoff_at=2, escalate_at=3))
    assert claim(c, "a", 0.0, resource=None).decision == "grant"
    assert claim(c, "b", 11.0, resource=None).decision == "grant"
    assert claim(c, "c", 12.0, resource=None).decision == "wait"


def test_a_flapping_resource_is_frozen_and_escalated() -> None:
    c = OscillationArbiter()
    results = []
    for n, digest in enumerate(["A", "B", "A", "B"]):
        assert claim(c, f"h{n}", float(n), work=f"w{n}").decision == "grant"
        results.append(c.release(holder=f"h{n}", resource="r", digest=digest, now=n + 0.5))
    assert [r.oscillation for r in results] == [None, None, None, "flapping"]
    assert results[-1].decision == "escalate" and "back and forth 2 times" in results[-1].reason
    frozen = claim(c, "h9", 5.0, work="w9")
    assert frozen.decision == "escalate" and "frozen" in frozen.reason
    c.expire(now=100.0)
    assert claim(c, "h10", 100.0, work="w10").decision == "grant"


def test_unchanged_content_is_no_flip() -> None:
    c = OscillationArbiter()
    for n, digest in enumerate(["A", "A", "B", "B", "B"]):
        claim(c, f"h{n}", float(n), work=f"w{n}")
        ruling = c.release(holder=f"h{n}", resource="r", digest=digest, now=float(n))
        assert ruling.oscillation is None


def test_strict_settings_damp_sooner() -> None:
    c = OscillationArbiter()
    normal = [claim(c, f"h{n}", float(n), resource=None).decision for n in range(4)]
    s = OscillationArbiter()
    strict = [claim(s, f"h{n}", float(n), resource=None, settings=STRICT).decision
              for n in range(4)]  # fmt: skip
    assert normal == ["grant", "grant", "grant", "wait"]
    assert strict == ["grant", "grant", "wait", "escalate"]


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=40))
def test_never_two_holders_of_one_resource_at_once(ops) -> None:
    c = OscillationArbiter(S2Settings(backoff_at=100, escalate_at=100))
    holder = None
    for n, (who, release) in enumerate(ops):
        now = n * 0.01
        if release:
            c.release(holder=who, resource="r", now=now)
            if holder == who:
                holder = None
        elif claim(c, who, now, work=who + str(n)).decision == "grant":
            assert holder in (None, who)
            holder = who


def test_a_success_ends_the_retry_loop() -> None:
    c = OscillationArbiter(S2Settings(backoff_at=3, escalate_at=4))
    for n in range(2):
        assert claim(c, f"h{n}", float(n), resource=None).decision == "grant"
    c.release(holder="h1", now=1.5, fingerprint="w", ok=False)
    assert claim(c, "h2", 2.0, resource=None).decision == "wait"  # a third failed try
    c.release(holder="h2", now=2.5, fingerprint="w", ok=True)
    assert [claim(c, f"k{n}", 3.0 + n, resource=None).decision for n in range(3)] == [
        "grant", "grant", "wait"
    ]  # fmt: skip
