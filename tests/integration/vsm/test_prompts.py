"""Prompt templates and task context under a token budget, on a real nats-server with the
VSM agents (two S1s) and the scripted LLM stand-in as the `cli` executor:

- each step's `{prompt}` is the S1 template with the task's context and the reminders;
  the context outgrows the budget, is compacted by the summariser executor (pinned fact
  intact, every prompt within the budget), and each compaction is in the audit log;
- the other S1 and `amcp prompt render` render the same prompt from the replicated context
  and compaction record;
- `amcp prompt render` with a bad template: one line, exit 2, nothing rendered.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents import AgentClient
from agents.vsm.prompts.tokens import estimate_tokens
from agents.vsm.tasks import StepIn, StepOut
from tests.support.cli import amcp_async
from tests.support.vsm import start_vsm, task_log, vsm_env

LLM = str(Path(__file__).resolve().parents[2] / "support" / "scripted_llm.py")
BUDGET = 2000
PARTS = 7
FILLER = "lorem ipsum dolor sit amet " * 60  # ~1.6 KB an answer: 7 outgrow the budget


@pytest.fixture
async def vsm(agent_cluster, make_bus, tmp_path):
    # the steps of a "report" task run in order (as a database task's would)
    analysis = tmp_path / "analysis.toml"
    analysis.write_text('[[domain]]\nname = "report"\npattern = "report"\nsequential = true\n')
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus, env=vsm_env(AMCP_ANALYSIS_RULES=str(analysis)))
    return agent_cluster, bus


def _rules(folder: Path) -> Path:
    rules = folder / "rules.json"
    rules.write_text(
        json.dumps(
            [
                {"match": r"^\[", "synthesise": "summarise"},  # the summariser's input
                {"match": "show the prompt", "echo": True},
                {
                    "match": r"Step \d+ \(iteration 1\): write part (\d+)",
                    "answer": "part {1}: " + FILLER,
                },
            ]
        )
    )
    return rules


async def test_context_over_budget_is_compacted_alike_everywhere_and_audited(
    vsm, cli_env, tmp_path
) -> None:
    cluster, bus = vsm
    rules = _rules(tmp_path)
    llm = f"{sys.executable} {LLM} --rules {rules} --"
    steps = [arg for n in range(PARTS) for arg in ("--step", f"write part {n}")]
    done = await amcp_async(
        "task",
        "write the quarterly report",
        *steps,
        "--step",
        "show the prompt",
        "--id",
        "report-1",
        "--cli",
        f"{llm} {{prompt}}",
        "--summariser",
        f"{llm} {{text}}",
        "--pin",
        "the audience is the board",
        "--context-budget",
        str(BUDGET),
        "--cwd",
        str(tmp_path),
        "--json",
        env=cluster.env(cli_env),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True
    outs = [StepOut.model_validate(s) for s in result["steps"]]
    assert [o.stdout.split(":")[0] for o in outs[:PARTS]] == [f"part {n}" for n in range(PARTS)]
    notes = [o.context or "" for o in outs]
    assert notes[0].startswith("context: 1 entry, not compacted")  # the pinned fact
    assert any(n.startswith("context compacted (now, executor)") for n in notes)
    # the last step's answer is its prompt (echo): within the budget, the pinned fact in it,
    # the earliest parts replaced by the summariser's summary, the latest kept whole
    prompt = outs[-1].stdout.removesuffix("\n")
    assert estimate_tokens(prompt) <= BUDGET
    assert "[fact pinned] the audience is the board" in prompt
    assert "[summary] SUMMARY:" in prompt
    assert "part 0: lorem" not in prompt and f"part {PARTS - 1}: lorem" in prompt
    assert "<system-reminder>Quorum: critical actions (" in prompt
    assert prompt.endswith("</system-reminder>")

    log = await task_log(bus, "report-1")
    compactions = [e for e in log if e["event"] == "context_compacted"]
    assert compactions and all(e["budget"] == BUDGET for e in compactions)
    assert all(e["summariser"] == "executor" for e in compactions)
    assert all(e["tokens_after"] <= BUDGET < e["tokens_before"] for e in compactions)

    # `amcp prompt render` renders the same prompt from the replicated record
    rendered = await amcp_async(
        "prompt",
        "render",
        "--role",
        "s1",
        "--id",
        "report-1",
        "--task",
        "show the prompt",
        "--description",
        "write the quarterly report",
        "--step",
        str(PARTS),
        "--cwd",
        str(tmp_path),
        "--context-budget",
        str(BUDGET),
        env=cluster.env(cli_env),
    )
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.removesuffix("\n") == prompt
    assert rendered.stderr.startswith("context compacted (earlier, executor)")

    # and so does the other S1, running the same step again
    last = outs[-1]
    other = "s1-b" if last.agent == "s1-a" else "s1-a"
    again = StepIn(
        task_id="report-1",
        step=PARTS,
        text="show the prompt",
        description="write the quarterly report",
        cwd=str(tmp_path),
        executor="cli",
        template=[*llm.split(), "{prompt}"],
        context_budget=BUDGET,
        pinned=["the audience is the board"],
    )
    reply = await AgentClient(bus).call(other, "execute", again.model_dump(), timeout=30)
    assert StepOut.model_validate(reply.output).stdout.removesuffix("\n") == prompt


async def test_prompt_render_with_a_bad_template_is_a_one_line_error(cli_env, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('system = "hello"\ntask = "{% for x in %}"\n')
    done = await amcp_async("prompt", "render", "--task", "x", "--template", str(bad), env=cli_env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"amcp: {bad}: section 'task' line 1: ")
    assert done.stderr.count("\n") == 1
    task = await amcp_async(
        "task", "x", "--cli", "echo {prompt}", "--prompt-template", str(bad), env=cli_env
    )
    assert task.returncode == 2 and task.stderr == done.stderr
    counter = await amcp_async(
        "prompt", "render", "--task", "x", "--offline", "--token-counter", "nope", env=cli_env
    )
    assert counter.returncode == 2
    assert counter.stderr.startswith("amcp: no token counter 'nope'")
    ok = await amcp_async(
        "prompt", "render", "--task", "count the lines", "--offline", "--json", env=cli_env
    )
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert "Step 0 (iteration 1): count the lines" in doc["prompt"] and not doc["compacted"]
    assert doc["tokens"] == estimate_tokens(doc["prompt"]) <= doc["budget"] == 100_000
