"""The synthesis input and the default concatenation: every subtask in the plan's order,
a degraded one as what is missing."""

from __future__ import annotations

from agents.vsm.delegation.synthesis import Result, concatenate, synthesis_input

RESULTS = [
    Result("1", "count lines", "42\n"),
    Result("2", "count words", None, "subtask 2 skipped after 3 attempts: exit 1"),
]


def test_concatenation_keeps_order_and_names_what_is_missing() -> None:
    assert concatenate(RESULTS) == (
        "## subtask 1: count lines\n42\n\n"
        "## subtask 2: count words\n(missing: subtask 2 skipped after 3 attempts: exit 1)"
    )


def test_the_synthesiser_input_is_bounded() -> None:
    big = [Result(str(i), "t", "x" * 50_000) for i in range(10)]
    text = synthesis_input("the task", big, limit=10_000)
    assert text.startswith("TASK: the task")
    assert len(text) < 12_000
    assert text.count("## subtask") == 10
