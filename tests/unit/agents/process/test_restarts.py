"""Restart decisions: exponential backoff inside the window, a budget, no restart on a
clean exit or on bad configuration."""

from __future__ import annotations

import pytest

from agents.process.restarts import RestartPolicy, RestartTracker
from agents.process.supervisor import describe_exit


def test_backoff_doubles_until_the_budget_is_spent() -> None:
    tracker = RestartTracker(RestartPolicy(max_restarts=4, window=60, base_delay=0.5, max_delay=3))
    delays = []
    for t in range(4):
        decision = tracker.on_exit(-9, now=float(t))
        assert decision.restart and decision.attempt == t + 1
        delays.append(decision.delay)
    assert delays == [0.5, 1.0, 2.0, 3.0]  # capped at max_delay
    final = tracker.on_exit(1, now=4.0)
    assert not final.restart
    assert "4 restarts within 60s" in final.reason
    assert tracker.total_restarts == 4


def test_restarts_older_than_the_window_no_longer_count() -> None:
    tracker = RestartTracker(RestartPolicy(max_restarts=2, window=10, base_delay=1, max_delay=8))
    assert tracker.on_exit(1, 0.0).delay == 1
    assert tracker.on_exit(1, 1.0).delay == 2
    assert not tracker.on_exit(1, 2.0).restart
    later = tracker.on_exit(1, 30.0)  # both earlier restarts are out of the window
    assert later.restart and later.delay == 1 and later.attempt == 1


@pytest.mark.parametrize(("code", "reason"), [(0, "cleanly"), (2, "configuration")])
def test_no_restart_after_a_clean_exit_or_bad_configuration(code: int, reason: str) -> None:
    decision = RestartTracker().on_exit(code, 0.0)
    assert not decision.restart and reason in decision.reason


def test_zero_budget_never_restarts() -> None:
    assert not RestartTracker(RestartPolicy(max_restarts=0)).on_exit(1, 0.0).restart


@pytest.mark.parametrize(
    "kwargs", [dict(max_restarts=-1), dict(window=0), dict(base_delay=5, max_delay=1)]
)
def test_bad_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RestartPolicy(**kwargs)


def test_exit_descriptions() -> None:
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(3) == "exit code 3"
