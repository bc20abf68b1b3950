"""Lifecycle states of an agent and the moves between them (pure).

starting -> running -> draining -> stopped; any state but stopped may move to failed.
Other agents see the state in heartbeats and in the member record.
"""

from __future__ import annotations

from enum import StrEnum

from agents.runtime.errors import AgentError

__all__ = ["Lifecycle", "LifecycleState"]


class LifecycleState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPED = "stopped"
    FAILED = "failed"


_S = LifecycleState
_MOVES: dict[LifecycleState, frozenset[LifecycleState]] = {
    _S.STARTING: frozenset({_S.RUNNING, _S.DRAINING, _S.FAILED}),
    _S.RUNNING: frozenset({_S.DRAINING, _S.FAILED}),
    _S.DRAINING: frozenset({_S.STOPPED, _S.FAILED}),
    _S.STOPPED: frozenset(),
    _S.FAILED: frozenset(),
}


class Lifecycle:
    """The current state; `move` refuses a transition the diagram does not have."""

    def __init__(self) -> None:
        self.state = LifecycleState.STARTING

    def can_move(self, to: LifecycleState) -> bool:
        return to in _MOVES[self.state]

    def move(self, to: LifecycleState) -> None:
        if not self.can_move(to):
            raise AgentError(f"an agent cannot go from {self.state} to {to}")
        self.state = to

    @property
    def accepting(self) -> bool:
        """Whether new work is taken (only while running)."""
        return self.state is LifecycleState.RUNNING

    @property
    def final(self) -> bool:
        return not _MOVES[self.state]
