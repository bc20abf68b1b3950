"""Tools: models from annotations, schemas and examples for discovery, validation errors
with their reasons, output checked; the wire shapes map error codes back to classes."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, Field

import agents
from agents import (
    AgentBusy,
    CallContext,
    Example,
    LifecycleState,
    Tool,
    ToolDefinitionError,
    ToolFailed,
    ToolHints,
    ToolInputError,
    UnknownTool,
    load_extensions,
    tool,
)
from agents.cli.tools import hint_words
from agents.runtime.errors import AgentError
from agents.runtime.lifecycle import Lifecycle
from agents.runtime.subjects import AgentSubjects, error_reply, ok_reply, parse_call, parse_reply
from agents.runtime.tools import ToolRegistry
from amcp.errors import ConfigError
from amcp.subjects import Subjects


class AddIn(BaseModel):
    a: int
    b: int = Field(ge=0, description="non-negative")


class AddOut(BaseModel):
    sum: int


@tool(examples=[Example({"a": 1, "b": 2}, {"sum": 3}, "small numbers")])
async def add(args: AddIn, ctx: CallContext) -> AddOut:
    """Add two numbers.

    More words here."""
    return AddOut(sum=args.a + args.b)


CTX = CallContext(None, "tester", "add", "00")


def test_all_names_are_exported() -> None:
    for name in agents.__all__:
        assert hasattr(agents, name), name


def test_decorator_takes_models_name_and_description_from_the_function() -> None:
    assert isinstance(add, Tool)
    assert add.name == "add" and add.input_model is AddIn and add.output_model is AddOut
    assert add.description.startswith("Add two numbers.")
    spec = add.spec()
    assert spec["input_schema"]["required"] == ["a", "b"] or "a" in spec["input_schema"]["required"]
    assert spec["input_schema"]["properties"]["b"]["minimum"] == 0
    assert spec["output_schema"]["properties"]["sum"]["type"] == "integer"
    assert spec["examples"] == [
        {"input": {"a": 1, "b": 2}, "output": {"sum": 3}, "description": "small numbers"}
    ]


def test_bad_input_gives_every_reason() -> None:
    with pytest.raises(ToolInputError) as err:
        add.parse_input({"a": "x", "b": -1})
    details = err.value.details
    assert {tuple(d["loc"]) for d in details} == {("a",), ("b",)}
    assert {d["type"] for d in details} == {"int_parsing", "greater_than_equal"}
    assert "invalid input for add" in str(err.value) and "1 more" in str(err.value)


def test_output_is_checked_and_dumped_as_plain_data() -> None:
    out = asyncio.run(add.handler(add.parse_input({"a": 2, "b": 3}), CTX))
    assert add.dump_output(out) == {"sum": 5}
    assert add.dump_output({"sum": 1}) == {"sum": 1}
    with pytest.raises(ToolFailed, match="does not fit"):
        add.dump_output({"total": 1})


def test_definition_errors() -> None:
    async def handler(args: AddIn, ctx: CallContext) -> AddOut:
        return AddOut(sum=0)

    with pytest.raises(ToolDefinitionError, match="invalid tool name"):
        Tool("Bad Name", "", AddIn, AddOut, handler)
    with pytest.raises(ToolDefinitionError, match="not a pydantic model"):
        Tool("t", "", dict, AddOut, handler)  # type: ignore[arg-type]
    with pytest.raises(ToolDefinitionError, match="async"):
        Tool("t", "", AddIn, AddOut, lambda a, c: None)  # type: ignore[arg-type]
    with pytest.raises(ToolDefinitionError, match="example"):
        Tool("t", "", AddIn, AddOut, handler, examples=(Example({"a": "x", "b": 1}),))
    with pytest.raises(ToolDefinitionError, match="annotate"):

        @tool()
        async def bare(args, ctx):  # type: ignore[no-untyped-def]
            return None


def test_hints_are_published_with_the_safe_defaults() -> None:
    async def handler(args: AddIn, ctx: CallContext) -> AddOut:
        return AddOut(sum=0)

    # default: not read-only, not destructive: a change that a caller may make
    assert add.spec()["hints"] == {
        "read_only": False,
        "destructive": False,
        "idempotent": False,
        "open_world": False,
    }
    wipe = Tool("wipe", "", AddIn, AddOut, handler, hints=ToolHints(destructive=True))
    assert wipe.spec()["hints"]["destructive"] is True
    query = Tool("q", "", AddIn, AddOut, handler, read_only=True)
    assert query.spec()["hints"] == {
        "read_only": True,
        "destructive": False,
        "idempotent": True,  # a query changes nothing, the second time neither
        "open_world": False,
    }
    with pytest.raises(ToolDefinitionError, match="read-only tool cannot be destructive"):
        Tool("x", "", AddIn, AddOut, handler, read_only=True, hints=ToolHints(destructive=True))
    assert hint_words(wipe.spec()) == "destructive"
    assert hint_words(query.spec()) == "read-only, idempotent"
    assert hint_words({"read_only": False}) == "none (may change state, not destructive)"


def test_registry_refuses_duplicates_and_lists_specs() -> None:
    registry = ToolRegistry([add])
    with pytest.raises(ToolDefinitionError):
        registry.add(add)
    assert registry.names() == ["add"] and registry.get("nope") is None
    assert [s["name"] for s in registry.specs()] == ["add"] and len(registry) == 1


def test_replies_round_trip_and_errors_come_back_as_their_class() -> None:
    assert parse_reply(ok_reply("a1", {"sum": 3})) == ("a1", {"sum": 3})
    for error in (
        ToolInputError("bad", details=[{"loc": ["a"]}]),
        UnknownTool("no"),
        AgentBusy("full"),
        ToolFailed("boom"),
    ):
        with pytest.raises(type(error)) as caught:
            parse_reply(error_reply("a1", error))
        assert caught.value.agent == "a1" and str(caught.value) == str(error)
        assert caught.value.details == error.details
    with pytest.raises(ToolFailed):  # an unknown code is a plain failure
        parse_reply({"ok": False, "error": {"code": "martian"}})
    with pytest.raises(agents.BadRequest):
        parse_reply("garbage")


def test_call_shapes() -> None:
    assert parse_call({"tool": "add", "input": {"a": 1}}) == ("add", {"a": 1})
    assert parse_call({"tool": "add"}) == ("add", {})
    for bad in (None, [], {"input": {}}, {"tool": 3}):
        with pytest.raises(agents.BadRequest):
            parse_call(bad)


def test_targets_and_reserved_ids() -> None:
    s = AgentSubjects(Subjects("c1"))
    assert s.target("s3") == "amcp.c1.agents.role.s3"
    assert s.target("any") == "amcp.c1.agents.any"
    assert s.target("a-7") == "amcp.c1.agents.call.a-7"
    with pytest.raises(ConfigError):
        s.target("a.b")
    with pytest.raises(ConfigError, match="reserved"):
        agents.AgentConfig(role="s1", agent_id="s2")
    with pytest.raises(ConfigError, match="unknown role"):
        agents.AgentConfig(role="s9")
    s5 = agents.AgentConfig(role="s5")
    assert not s5.voter  # the runtime has no role policy of its own
    load_extensions(s5)
    assert s5.voter  # S5 always votes: its role says so (PolicyRole.voter)
    s1 = agents.AgentConfig(role="s1")
    load_extensions(s1)
    assert not s1.voter
    assert agents.AgentConfig(role="s1").agent_id.startswith("s1-")


def test_lifecycle_moves() -> None:
    life = Lifecycle()
    assert life.state is LifecycleState.STARTING and not life.accepting
    life.move(LifecycleState.RUNNING)
    assert life.accepting
    with pytest.raises(AgentError):
        life.move(LifecycleState.STOPPED)  # must drain first
    life.move(LifecycleState.DRAINING)
    life.move(LifecycleState.STOPPED)
    assert life.final and not life.can_move(LifecycleState.FAILED)
