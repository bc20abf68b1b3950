"""Tools whose input and output are raw JSON schemas (no pydantic model), as mounted MCP
tools are: validated on the agent with jsonschema, errors in the shape pydantic's take,
the schema published as given; a tool's availability in its spec."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.runtime.errors import ToolDefinitionError, ToolFailed, ToolInputError
from agents.runtime.rawschema import RawSchema
from agents.runtime.tools import CallContext, Example, Tool

INPUT = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "head": {"type": "integer", "minimum": 1},
    },
    "required": ["path"],
    "additionalProperties": False,
}
OUTPUT = {"type": "object", "properties": {"content": {"type": "string"}}, "required": ["content"]}


async def handler(args: Any, ctx: CallContext) -> Any:
    return {"content": args["path"]}


def raw_tool(**kwargs: Any) -> Tool:
    return Tool("fs.read", "Read a file.", INPUT, OUTPUT, handler, **kwargs)


def test_valid_input_is_handed_over_as_plain_data() -> None:
    assert raw_tool().parse_input({"path": "/a", "head": 2}) == {"path": "/a", "head": 2}


def test_bad_input_gets_the_schema_error_with_where_and_why() -> None:
    t = raw_tool()
    with pytest.raises(ToolInputError) as caught:
        t.parse_input({"head": 0})
    assert str(caught.value) == (
        "invalid input for fs.read: input: 'path' is a required property (and 1 more)"
    )
    assert caught.value.details == [
        {"loc": [], "msg": "'path' is a required property", "type": "required"},
        {"loc": ["head"], "msg": "0 is less than the minimum of 1", "type": "minimum"},
    ]
    with pytest.raises(
        ToolInputError, match=r"input: Additional properties are not allowed \('x' was unexpected\)"
    ):
        t.parse_input({"path": "/a", "x": 1})
    with pytest.raises(ToolInputError, match=r"input: \[\] is not of type 'object'"):
        t.parse_input([])


def test_the_schemas_are_published_as_given() -> None:
    spec = raw_tool().spec()
    assert spec["input_schema"] == INPUT and spec["output_schema"] == OUTPUT
    assert spec["available"] is True


def test_output_that_does_not_fit_its_schema_is_a_failure() -> None:
    t = raw_tool()
    assert t.dump_output({"content": "x"}) == {"content": "x"}
    with pytest.raises(ToolFailed, match="content: 3 is not of type 'string'"):
        t.dump_output({"content": 3})


def test_a_bad_schema_or_example_is_refused_when_the_tool_is_defined() -> None:
    with pytest.raises(ToolDefinitionError, match="input: not a valid JSON schema"):
        Tool("t", "", {"type": "no-such-type"}, OUTPUT, handler)
    with pytest.raises(ToolDefinitionError, match="not a pydantic model nor a JSON schema"):
        Tool("t", "", 42, OUTPUT, handler)  # type: ignore[arg-type]
    with pytest.raises(ToolDefinitionError, match="does not fit its input model"):
        raw_tool(examples=(Example({"head": 1}),))
    assert raw_tool(examples=(Example({"path": "/a"}, {"content": "/a"}),)).examples


def test_a_tool_says_when_it_cannot_be_called() -> None:
    why: list[str | None] = ["MCP server fs is down: it exited"]
    t = raw_tool(availability=lambda: why[0])
    spec = t.spec()
    assert spec["available"] is False and spec["unavailable"] == "MCP server fs is down: it exited"
    why[0] = None
    assert t.spec()["available"] is True and "unavailable" not in t.spec()


@given(st.dictionaries(st.sampled_from(["path", "head", "other"]), st.integers() | st.text()))
def test_accepted_exactly_when_jsonschema_finds_no_error(value: dict[str, Any]) -> None:
    errors = RawSchema(INPUT).errors(value)
    try:
        raw_tool().parse_input(value)
        accepted = True
    except ToolInputError as exc:
        accepted = False
        assert exc.details == errors
    assert accepted is (errors == [])
    assert accepted is (
        set(value) <= {"path", "head"}
        and isinstance(value.get("path"), str)
        and ("head" not in value or (isinstance(value["head"], int) and value["head"] >= 1))
    )
