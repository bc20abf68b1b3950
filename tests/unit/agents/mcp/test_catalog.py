"""The bridge's view of the agents' tools (pure): MCP entries with schemas, examples and
all four annotations; calls routed to the role, or to an agent when only some have the
tool; the runtime's own tools left to the built-ins; results and errors as MCP shapes."""

from __future__ import annotations

from agents.mcp.catalog import build_catalog
from agents.mcp.schema import annotations, error_result, ok_result
from agents.runtime.catalog import BUILTIN, Text
from agents.runtime.tools import ToolHints, tool

HINTS = {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}


@tool("wipe-all", hints=ToolHints(destructive=True, open_world=True))
async def wipe(args: Text, ctx) -> Text:  # type: ignore[no-untyped-def]
    """Wipe everything.

    Long details that the first paragraph does not carry."""
    return args


DESCRIBE = {"name": "describe", "input_schema": {"type": "object"}, "read_only": True}


def test_entries_carry_schemas_examples_annotations_and_where_they_run() -> None:
    echo = BUILTIN["echo"].spec()
    catalog = build_catalog(
        {"s1-a": ("s1", [echo, wipe.spec(), DESCRIBE]), "s1-b": ("s1", [echo, DESCRIBE])}
    )
    assert [e["name"] for e in catalog.entries] == ["s1__echo", "s1__wipe_all"]
    entry = {e["name"]: e for e in catalog.entries}
    assert entry["s1__echo"]["inputSchema"]["examples"] == [{"text": "hello"}]
    assert entry["s1__echo"]["outputSchema"]["type"] == "object"
    assert entry["s1__echo"]["_meta"]["amcp"] == {
        "role": "s1",
        "tool": "echo",
        "agents": ["s1-a", "s1-b"],
    }
    echo_hints = entry["s1__echo"]["annotations"]
    assert echo_hints["readOnlyHint"] and echo_hints["idempotentHint"]
    assert entry["s1__wipe_all"]["annotations"] == {
        "readOnlyHint": False,
        "destructiveHint": True,
        "idempotentHint": False,
        "openWorldHint": True,
        "title": "s1 wipe-all",
    }
    assert entry["s1__wipe_all"]["description"].startswith("Wipe everything.")
    # every agent of s1 has echo: the role's queue group; only s1-a has wipe-all: s1-a
    assert catalog.routes["s1__echo"].target == "s1"
    assert catalog.routes["s1__wipe_all"].target == "s1-a"
    assert catalog.routes["s1__wipe_all"].tool == "wipe-all"
    assert catalog.routes["s1__wipe_all"].hints["destructive"] is True


def test_an_agent_without_hints_is_not_read_only_and_all_hints_are_set() -> None:
    old = {"name": "go", "input_schema": {"type": "object"}, "read_only": False}
    catalog = build_catalog({"s2-a": ("s2", [old])})
    (entry,) = catalog.entries
    assert set(entry["annotations"]) >= HINTS
    assert entry["annotations"]["readOnlyHint"] is False
    assert "outputSchema" not in entry and entry["inputSchema"] == {"type": "object"}
    assert build_catalog({}).entries == ()


def test_annotations_never_say_read_only_and_destructive() -> None:
    a = annotations({"read_only": True, "destructive": True})
    assert a["readOnlyHint"] and not a["destructiveHint"] and a["idempotentHint"]


def test_results_and_errors() -> None:
    ok = ok_result({"text": "hi"}, {"agent": "s1-a", "call": "ab"})
    assert ok["structuredContent"] == {"text": "hi"} and ok["isError"] is False
    assert ok["content"][0]["text"] == '{\n  "text": "hi"\n}'
    assert ok["_meta"] == {"amcp": {"agent": "s1-a", "call": "ab"}}
    assert ok_result([1, 2])["structuredContent"] == {"result": [1, 2]}
    err = error_result("no agent")
    assert err == {"content": [{"type": "text", "text": "no agent"}], "isError": True}


def test_an_unavailable_tool_is_offered_only_where_it_can_run() -> None:
    echo = BUILTIN["echo"].spec()
    down = {**echo, "available": False, "unavailable": "fs server restarting"}
    split = build_catalog({"s1-a": ("s1", [down]), "s1-b": ("s1", [{**echo, "available": True}])})
    assert split.routes["s1__echo"].target == "s1-b"
    assert build_catalog({"s1-a": ("s1", [down])}).entries == ()
