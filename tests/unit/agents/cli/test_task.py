"""`amcp task`'s arguments become a TaskSpec (one-line errors otherwise), and a cycle
result prints in plain words with the issue's exit codes."""

from __future__ import annotations

import argparse

import pytest

from agents.cli.task import exit_code, register, render_result, spec_from
from agents.vsm.tasks import CycleResult, StepOut, TaskSpec
from amcp.cli.common import EXIT_USAGE
from amcp.errors import ConfigError
from tests.support.cli import amcp


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["task", *argv])


def test_flags_map_onto_the_task(tmp_path) -> None:
    spec = spec_from(parse("fix it", "--complex", "--cwd", str(tmp_path), "--timeout", "5",
                           "--step", "a", "--step", "b", "--check", "make test",
                           "--resource", "x.txt", "--urgency", "high",
                           "--cli", "claude -p '{text}'"))  # fmt: skip
    assert spec.complexity == "complex" and spec.cwd == str(tmp_path) and spec.timeout == 5
    assert spec.steps == ["a", "b"] and spec.check == "make test" and spec.resource == "x.txt"
    assert spec.executor == "cli" and spec.template == ["claude", "-p", "{text}"]
    assert spec.urgency == "high"
    python = spec_from(parse("x", "--python", "noop", "--cwd", str(tmp_path)))
    assert python.executor == "python" and python.entry_point == "noop"


def test_bad_arguments_are_one_line_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        spec_from(parse("x", "--cwd", str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match="a step cannot be empty"):
        spec_from(parse("x", "--step", " ", "--cwd", str(tmp_path)))
    with pytest.raises(ConfigError, match="id"):
        spec_from(parse("x", "--id", "bad id", "--cwd", str(tmp_path)))


def test_the_same_work_has_the_same_fingerprint() -> None:
    a = TaskSpec(description="run", steps=["make"], cwd="/w")
    assert a.fingerprint() == TaskSpec(id="other", description="again", steps=["make"],
                                       cwd="/w").fingerprint()  # fmt: skip
    assert a.fingerprint() != TaskSpec(description="run", steps=["make"], cwd="/v").fingerprint()


def test_results_render_and_map_to_exit_codes() -> None:
    ok = CycleResult(
        task_id="t-1", success=True, summary="1 step ran on s1-a; audit passed", iterations=1,
        agents=["s3-a", "s1-a"], path=["s3-a: took the task"],
        steps=[StepOut(task_id="t-1", step=0, agent="s1-a", ok=True, exit_code=0,
                       stdout="hello\n", ms=3.0)],
        audit={"passed": True, "strict": False, "rules": ["ran"], "failures": []},
    )  # fmt: skip
    text = render_result(ok)
    assert text.startswith("task t-1 succeeded: 1 step ran on s1-a")
    assert "    | hello" in text and "audit: passed (normal rules: ran)" in text
    assert exit_code(ok) == 0
    no_quorum = ok.model_copy(update={"success": False, "vote": {"outcome": "no_quorum"}})
    assert exit_code(no_quorum) == 3
    failed = ok.model_copy(update={"success": False})
    assert exit_code(failed) == 1 and render_result(failed).startswith("task t-1 failed")


def test_prompt_flags_map_onto_the_task(tmp_path) -> None:
    template = tmp_path / "t.toml"
    template.write_text('task = "{{ text }}"\n')
    spec = spec_from(parse("x", "--cwd", str(tmp_path), "--cli", "llm -- {prompt}",
                           "--prompt-template", str(template), "--context-budget", "500",
                           "--pin", "a fact", "--pin", "another",
                           "--summariser", "llm --summarise -- {text}"))  # fmt: skip
    assert spec.uses_prompt() and spec.prompt_template == template.read_text()
    assert spec.context_budget == 500 and spec.pinned == ["a fact", "another"]
    assert spec.summariser == ["llm", "--summarise", "--", "{text}"]
    assert not spec_from(parse("x", "--cwd", str(tmp_path), "--cli", "llm {text}")).uses_prompt()
    with pytest.raises(ConfigError, match="context_budget"):
        spec_from(parse("x", "--cwd", str(tmp_path), "--context-budget", "0"))


def test_a_step_says_how_its_prompt_context_was_kept() -> None:
    note = "context compacted (now, executor): 4 entries replaced by a summary"
    step = StepOut(task_id="t-1", step=0, agent="s1-a", ok=True, exit_code=0, context=note)
    result = CycleResult(task_id="t-1", success=True, summary="ok", steps=[step])
    assert f"  step 1 on s1-a: exit 0 in 0 ms\n    {note}" in render_result(result)


@pytest.mark.parametrize(
    "option, value, words",
    [
        ("--cli", "", "an empty command"),  # was "not given": the description ran in /bin/sh
        ("--cli", "  ", "an empty command"),
        ("--cli", 'echo "unterminated', "no closing quotation"),
        ("--summariser", "", "an empty command"),
        ("--summariser", "llm 'x", "no closing quotation"),
        ("--python", "", "must not be empty"),
        ("--cwd", "", "must not be empty"),
        ("--prompt-template", "", "must not be empty"),
    ],
)
@pytest.mark.parametrize("delegate", [False, True])
def test_an_empty_or_unsplittable_executor_option_is_a_usage_error(
    option: str, value: str, words: str, delegate: bool
) -> None:
    # nothing runs: refused before connecting (there is no NATS here to connect to)
    extra = ["--delegate", "--step", "a"] if delegate else []
    done = amcp("task", "echo pwned", f"{option}={value}", *extra, "--nats", "nats://127.0.0.1:1")
    assert done.returncode == EXIT_USAGE, done.stderr
    assert done.stderr.count("\n") == 1 and option in done.stderr and words in done.stderr


@pytest.mark.parametrize(
    "option, value", [("--planner", ""), ("--synthesiser", " "), ("--planner", "x 'y")]
)
def test_an_empty_or_unsplittable_delegation_template_is_a_usage_error(
    option: str, value: str
) -> None:
    done = amcp("task", "x", "--delegate", f"{option}={value}", "--nats", "nats://127.0.0.1:1")
    assert done.returncode == EXIT_USAGE, done.stderr
    assert done.stderr.count("\n") == 1 and option in done.stderr
