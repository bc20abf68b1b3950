"""Prompt templates and task context under a token budget, on a real nats-server with the
VSM agents (two S1s) and the scripted LLM stand-in as the `cli` executor:

- each step's `{prompt}` is the S1 template with the task's context and the reminders;
  the context outgrows the budget, is compacted by the summariser executor (pinned fact
  intact, every prompt within the budget), and each compaction is in the audit log;
- the other S1 and `amcp prompt render` render the same prompt from the replicated context
  and compaction record;
- `amcp prompt render` with a bad template: one line, exit 2, nothing rendered;
- a summariser that fails gives way to the extractive summary, and another replica
  renders the same prompt from the replicated record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents import AgentClient
from agents.vsm.prompts.compaction import Compaction, Entry
from agents.vsm.prompts.context import add_entry, compaction_key, prepare
from agents.vsm.prompts.template import default_template
from agents.vsm.prompts.tokens import estimate_tokens
from agents.vsm.tasks import StepIn, StepOut
from crdt.store import ContextStore
from tests.support.cli import amcp_async
from tests.support.vsm import start_vsm, task_log, vsm_env
from tests.support.waiting import wait_until

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


async def test_a_summariser_that_fails_gives_way_to_the_extractive_summary(
    make_bus, cluster_name
) -> None:
    writer = await ContextStore.open(await make_bus("writer", cluster=cluster_name))
    reader = await ContextStore.open(await make_bus("reader", cluster=cluster_name))
    try:
        for n in range(20):
            await add_entry(writer, "t-x", Entry(f"step-{n}-1", "step", f"out {n} " * 80, n))
        await add_entry(writer, "t-x", Entry("pin-0", "fact", "keep me", 0, pinned=True))
        base = {"role": "s1", "task_id": "t-x", "step": 20, "iteration": 1, "text": "go",
                "description": "d", "cwd": "/"}  # fmt: skip
        template = default_template("s1")

        async def broken(entries, limit):
            raise RuntimeError("the model is down")

        done = await prepare(writer, template, base, "t-x", [], 800, summariser=broken)
        assert done.compacted_now and done.tokens <= 800
        assert done.compaction is not None and done.compaction.summariser == "extractive"
        assert "[fact pinned] keep me" in done.prompt
        assert Compaction.from_wire(writer.local(compaction_key("t-x"))) == done.compaction
        # another replica applies the replicated record: the same prompt, no new compaction

        async def replicated() -> bool:
            held = reader.local(compaction_key("t-x"))
            return held is not None and len(reader.local("task.t-x.context") or {}) == 21

        await wait_until(replicated, 10, what="the context and record on the other replica")
        again = await prepare(reader, template, base, "t-x", [], 800, record=False)
        assert again.prompt == done.prompt and not again.compacted_now
    finally:
        await writer.close()
        await reader.close()
