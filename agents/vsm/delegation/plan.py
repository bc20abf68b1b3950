"""A delegated task's plan: the subtasks it splits into, from the user's `--step`s or from
a planner executor's JSON answer. Pure: parsing and validation only.

A planner answers `{"subtasks": [ITEM, ...]}` or a bare `[ITEM, ...]`, where an ITEM is a
string (the subtask's text) or an object with `text` and optionally `id`, `context` (the
slice of the task's context this subtask's worker gets), `alternative` (what to run if it
fails under the `alternative` policy) and `on_failure` (`retry`, `skip`, `alternative`).
A JSON block fenced in ``` inside prose is found too, as models like to wrap answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agents.vsm.delegation.policy import FailurePolicy

__all__ = ["MAX_SUBTASKS", "MAX_TEXT", "PlanError", "Subtask", "parse_plan", "plan_from_steps"]

MAX_SUBTASKS = 32  # as many as a task's --steps
MAX_TEXT = 8192  # a step's text limit (agents.vsm.tasks.StepIn)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.S)
_KEYS = frozenset({"id", "text", "context", "alternative", "on_failure"})


class PlanError(ValueError):
    """The plan cannot be used: the message says which subtask and why, in one line."""


@dataclass(frozen=True, slots=True)
class Subtask:
    id: str
    text: str
    context: str = ""  # this subtask's own slice of the task's context
    alternative: str | None = None
    on_failure: FailurePolicy | None = None  # None: the task's policy


def plan_from_steps(steps: list[str]) -> tuple[Subtask, ...]:
    """The user's steps, one subtask each, numbered from 1."""
    if not steps:
        raise PlanError("a delegated task needs --step subtasks or a --planner")
    if len(steps) > MAX_SUBTASKS:
        raise PlanError(f"{len(steps)} subtasks: at most {MAX_SUBTASKS}")
    return tuple(Subtask(str(i), _text(s, f"step {i}")) for i, s in enumerate(steps, 1))


def parse_plan(answer: str) -> tuple[Subtask, ...]:
    """The subtasks of a planner's answer; PlanError says what is wrong with it."""
    doc = _json_of(answer)
    items = doc.get("subtasks") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise PlanError('planner answer: expected {"subtasks": [...]} or a JSON list')
    if not items:
        raise PlanError("planner answer: no subtasks")
    if len(items) > MAX_SUBTASKS:
        raise PlanError(f"planner answer: {len(items)} subtasks, at most {MAX_SUBTASKS}")
    subtasks = tuple(_item(item, i) for i, item in enumerate(items, 1))
    seen: set[str] = set()
    for sub in subtasks:
        if sub.id in seen:
            raise PlanError(f"planner answer: subtask id {sub.id!r} appears twice")
        seen.add(sub.id)
    return subtasks


def _json_of(answer: str) -> Any:
    text = answer.strip()
    if not text:
        raise PlanError("planner answer is empty")
    fenced = _FENCE.search(text)
    for candidate in (text, fenced.group(1) if fenced else None):
        if candidate is None:
            break
        try:
            return json.loads(candidate)
        except ValueError as exc:
            why = exc
    first = text.splitlines()[0][:60]
    raise PlanError(f"planner answer is not JSON ({why}): {first!r}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PlanError(f"{where}: text must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise PlanError(f"{where}: text of {len(value)} characters, at most {MAX_TEXT}")
    return value


def _item(item: Any, index: int) -> Subtask:
    where = f"planner subtask {index}"
    if isinstance(item, str):
        return Subtask(str(index), _text(item, where))
    if not isinstance(item, dict):
        raise PlanError(f"{where}: expected a string or an object, not {type(item).__name__}")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise PlanError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    sub_id = item.get("id", str(index))
    if not isinstance(sub_id, str | int) or not _ID.match(str(sub_id)):
        raise PlanError(f"{where}: id must be 1-32 letters, digits, _ or -")
    context = item.get("context", "")
    if not isinstance(context, str) or len(context) > MAX_TEXT:
        raise PlanError(f"{where}: context must be a string of at most {MAX_TEXT} characters")
    alternative = item.get("alternative")
    if alternative is not None:
        alternative = _text(alternative, f"{where} alternative")
    policy = item.get("on_failure")
    if policy is not None:
        try:
            policy = FailurePolicy(policy)
        except ValueError:
            known = ", ".join(p.value for p in FailurePolicy)
            raise PlanError(f"{where}: on_failure {policy!r} is not one of {known}") from None
    return Subtask(str(sub_id), _text(item.get("text"), where), context, alternative, policy)
