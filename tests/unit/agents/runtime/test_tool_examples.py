"""Every built-in tool of every role has examples that fit its input model, and `amcp tools`
shows descriptions as whole sentences, wrapped, never cut mid-sentence."""

from __future__ import annotations

import json

import pytest

from agents.cli.tools import tool_summary
from agents.runtime.admin import admin_tools
from agents.runtime.catalog import BUILTIN
from agents.runtime.config import AgentConfig
from agents.runtime.extension import load_extensions
from agents.runtime.subjects import ROLES
from agents.runtime.tools import Tool, ToolRegistry


def tools_of(role: str) -> list[Tool]:
    extensions = load_extensions(AgentConfig(role=role, agent_id=f"{role}-x"))
    # admin tools only close over the agent; none of them runs here
    admin = admin_tools(None, ToolRegistry(), extensions)  # type: ignore[arg-type]
    return [*admin, *(t for e in extensions for t in e.tools())]


@pytest.mark.parametrize("role", ROLES)
def test_every_tool_of_every_role_has_an_example_that_fits(role: str) -> None:
    tools = [*tools_of(role), *BUILTIN.values()]
    assert len(tools) > 4
    missing = [t.name for t in tools if not t.examples]
    assert missing == [], f"{role} tools without examples: {missing}"
    for t in tools:
        for example in t.spec()["examples"]:
            # as a caller gets it: JSON over the wire, then the tool's own validation
            sent = json.loads(json.dumps(example["input"]))
            t.parse_input(sent)
            if "output" in example:
                t.output_model.model_validate(example["output"])


@pytest.mark.parametrize("role", ROLES)
def test_summaries_are_whole_sentences(role: str) -> None:
    for t in tools_of(role):
        lines = tool_summary(t.description, width=60)
        flat = " ".join(line.strip() for line in lines)
        assert " ".join(t.description.split()).startswith(flat) and flat, t.name
        assert flat.endswith((".", ")", "?")), (t.name, flat)  # a sentence ends it
        assert all(len(line) <= 60 for line in lines), lines


def test_a_long_description_is_wrapped_not_cut() -> None:
    text = "First sentence runs on\nover two lines. Second one.\n\nDetails nobody asked for."
    assert tool_summary(text, width=20) == [
        "First sentence runs",
        "on over two lines.",
        "Second one.",
    ]
