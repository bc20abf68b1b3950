"""The plan: the user's steps, or a planner's JSON answer, parsed with a clear error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.vsm.delegation.plan import (
    MAX_SUBTASKS,
    PlanError,
    Subtask,
    parse_plan,
    plan_from_steps,
)
from agents.vsm.delegation.policy import FailurePolicy


def test_steps_become_numbered_subtasks() -> None:
    assert plan_from_steps(["a", "b"]) == (Subtask("1", "a"), Subtask("2", "b"))


@pytest.mark.parametrize("steps", [[], ["a", " "], ["x"] * (MAX_SUBTASKS + 1)])
def test_bad_steps_are_refused(steps: list[str]) -> None:
    with pytest.raises(PlanError):
        plan_from_steps(steps)


def test_a_planner_answer_with_every_field() -> None:
    answer = json.dumps(
        {
            "subtasks": [
                "plain",
                {
                    "id": "fetch",
                    "text": "get it",
                    "context": "only the URL",
                    "alternative": "get the mirror",
                    "on_failure": "alternative",
                },
            ]
        }
    )
    assert parse_plan(answer) == (
        Subtask("1", "plain"),
        Subtask("fetch", "get it", "only the URL", "get the mirror", FailurePolicy.ALTERNATIVE),
    )


def test_a_bare_list_and_a_fenced_block_are_read() -> None:
    assert parse_plan('["a", "b"]') == plan_from_steps(["a", "b"])
    prose = 'Here is the plan:\n```json\n{"subtasks": ["a"]}\n```\nGood luck.'
    assert parse_plan(prose) == (Subtask("1", "a"),)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("", "empty"),
        ("I would rather not", "not JSON"),
        ('{"steps": ["a"]}', 'expected {"subtasks"'),
        ('{"subtasks": []}', "no subtasks"),
        ('{"subtasks": [3]}', "subtask 1: expected a string or an object, not int"),
        ('{"subtasks": ["a", {"txt": "b"}]}', "subtask 2: unknown key 'txt'"),
        ('{"subtasks": [{"context": "c"}]}', "subtask 1: text must be a non-empty string"),
        ('{"subtasks": [{"text": "a", "on_failure": "pray"}]}', "on_failure 'pray'"),
        ('{"subtasks": [{"text": "a", "id": "a b"}]}', "id must be"),
        ('{"subtasks": [{"text": "a", "id": "x"}, {"text": "b", "id": "x"}]}', "twice"),
        (json.dumps(["a"] * (MAX_SUBTASKS + 1)), "at most"),
    ],
)
def test_a_bad_answer_is_one_clear_line(answer: str, says: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(answer)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.one_of(st.text(), _json.map(json.dumps)))
def test_any_answer_gives_subtasks_or_a_plan_error(answer: str) -> None:
    try:
        subtasks = parse_plan(answer)
    except PlanError as exc:
        assert "\n" not in str(exc)
    else:
        assert 1 <= len(subtasks) <= MAX_SUBTASKS
        assert len({s.id for s in subtasks}) == len(subtasks)
        assert all(s.text.strip() for s in subtasks)
