"""Tools: what an agent can be asked to do, with pydantic input and output models.

A tool has a name, a description, an input model, an output model, examples, whether it
is read-only, and an async handler `(args, ctx) -> output`. Either model may instead be a
raw JSON schema (a mapping; agents.runtime.rawschema), as an external MCP server's tools
have: the handler then gets the validated plain data. Its JSON schemas and examples
are published over the bus (`describe`), so a caller can find out how to call it; bad
input is answered with the validation errors, never with silence.

    class EchoIn(BaseModel):
        text: str

    @tool(examples=[Example({"text": "hi"}, {"text": "hi"})])
    async def echo(args: EchoIn, ctx: CallContext) -> EchoIn:
        "Return the text."
        return args
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ValidationError

from agents.runtime.errors import ToolDefinitionError, ToolFailed, ToolInputError
from agents.runtime.handle import AgentHandle
from agents.runtime.rawschema import RawSchema

__all__ = ["NO_INPUT", "CallContext", "Example", "Tool", "ToolHints", "ToolRegistry", "tool"]

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
Handler = Callable[[Any, "CallContext"], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who called and on which agent; handed to every tool handler."""

    agent: AgentHandle | None
    caller: str  # the verified sender of the request
    tool: str
    call_id: str  # the request's message id, hex; ties audit entries of one call together


@dataclass(frozen=True, slots=True)
class Example:
    """An input and (optionally) the output it gives; checked against the models."""

    input: dict[str, Any]
    output: dict[str, Any] | None = None
    description: str = ""

    def to_wire(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"input": self.input}
        if self.output is not None:
            doc["output"] = self.output
        if self.description:
            doc["description"] = self.description
        return doc


@dataclass(frozen=True, slots=True)
class ToolHints:
    """What a tool's calls do to the world, for callers that choose how to call it (MCP
    clients show them as annotations; a destructive tool is put to a quorum vote first).
    Whether it is read-only is the Tool's own `read_only`, which the runtime acts on."""

    destructive: bool = False  # may undo or destroy something (delete, overwrite, restart)
    idempotent: bool = False  # a second call with the same input changes nothing more
    open_world: bool = False  # reaches outside the cluster (web, external systems)

    def to_wire(self, read_only: bool) -> dict[str, bool]:
        return {
            "read_only": read_only,
            "destructive": self.destructive,
            "idempotent": self.idempotent or read_only,
            "open_world": self.open_world,
        }


NO_INPUT = (Example({}, description="no input"),)  # the examples of a tool that takes none


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as plain data: where, what, and the error type."""
    return [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e["loc"]],
            "msg": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors(include_url=False)
    ]


@dataclass(frozen=True)
class Tool:
    """One capability an agent serves."""

    name: str
    description: str
    input_model: type[BaseModel] | Mapping[str, Any]  # or a raw JSON schema
    output_model: type[BaseModel] | Mapping[str, Any]
    handler: Handler
    examples: tuple[Example, ...] = ()
    pooled: bool = True  # runs inside the agent's bounded pool; False for cheap queries
    audited: bool = True  # task received / completed / failed go to the audit log
    # Changes nothing but logs and counters: may run again on a replayed frame. Any other
    # call through a queue group is claimed first, so it runs at most once in the cluster.
    read_only: bool = False
    hints: ToolHints = ToolHints()
    # Why the tool cannot be called now, or None when it can (a mounted MCP server that is
    # down): asked on each `describe`, so the spec says whether it is available.
    availability: Callable[[], str | None] | None = None
    _schema: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _raw: dict[str, RawSchema] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ToolDefinitionError(
                f"invalid tool name {self.name!r}: lowercase letters, digits, '_', '.', '-'"
            )
        for side, model in (("input", self.input_model), ("output", self.output_model)):
            if isinstance(model, Mapping):
                try:
                    self._raw[side] = RawSchema(model)
                except ValueError as exc:
                    raise ToolDefinitionError(f"tool {self.name}: {side}: {exc}") from None
            elif not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise ToolDefinitionError(
                    f"tool {self.name}: {model!r} is not a pydantic model nor a JSON schema"
                )
        if self.read_only and self.hints.destructive:
            raise ToolDefinitionError(f"tool {self.name}: a read-only tool cannot be destructive")
        if not inspect.iscoroutinefunction(self.handler):
            raise ToolDefinitionError(f"tool {self.name}: the handler must be an async function")
        for example in self.examples:
            pairs = [("input", example.input)]
            if example.output is not None:
                pairs.append(("output", example.output))
            for side, value in pairs:
                if errors := self._errors(side, value):
                    raise ToolDefinitionError(
                        f"tool {self.name}: an example does not fit its {side} model: "
                        f"{errors[0]['msg']}"
                    )

    def _model(self, side: str) -> type[BaseModel]:
        return self.input_model if side == "input" else self.output_model  # type: ignore[return-value]

    def _errors(self, side: str, value: Any) -> list[dict[str, Any]]:
        """Why `value` does not fit the input or output side, in one shape for both kinds."""
        raw = self._raw.get(side)
        if raw is not None:
            return raw.errors(value)
        try:
            self._model(side).model_validate(value)
        except ValidationError as exc:
            return validation_details(exc)
        return []

    def _json_schema(self, side: str) -> dict[str, Any]:
        raw = self._raw.get(side)
        return raw.schema if raw is not None else self._model(side).model_json_schema()

    def spec(self) -> dict[str, Any]:
        """Name, description, JSON schemas and examples: what `describe` publishes."""
        if not self._schema:
            self._schema.update(
                name=self.name,
                description=self.description,
                input_schema=self._json_schema("input"),
                output_schema=self._json_schema("output"),
                examples=[e.to_wire() for e in self.examples],
                pooled=self.pooled,
                read_only=self.read_only,
                hints=self.hints.to_wire(self.read_only),
            )
        doc = dict(self._schema)
        if self.availability is not None and (why := self.availability()) is not None:
            doc.update(available=False, unavailable=why)
        else:
            doc["available"] = True
        return doc

    def parse_input(self, raw: Any) -> Any:
        """The validated input (the model, or the plain data a raw schema accepts);
        ToolInputError with the validator's reasons otherwise."""
        schema = self._raw.get("input")
        try:
            if schema is None:
                return self.input_model.model_validate(raw)  # type: ignore[union-attr]
            if not (details := schema.errors(raw)):
                return raw
        except ValidationError as exc:
            details = validation_details(exc)
        first = details[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise ToolInputError(
            f"invalid input for {self.name}: {where}: {first['msg']}"
            + (f" (and {len(details) - 1} more)" if len(details) > 1 else ""),
            details=details,
        )

    def dump_output(self, output: Any) -> Any:
        """The output as plain data, checked against the output model."""
        schema = self._raw.get("output")
        if schema is not None:
            if errors := schema.errors(output):
                where = ".".join(str(p) for p in errors[0]["loc"]) or "output"
                raise ToolFailed(
                    f"tool {self.name} returned output that does not fit its schema: "
                    f"{where}: {errors[0]['msg']}"
                )
            return output
        try:
            model = (
                output
                if type(output) is self.output_model
                else self.output_model.model_validate(output)
            )
        except ValidationError as exc:
            raise ToolFailed(
                f"tool {self.name} returned output that does not fit its model: {exc}"
            ) from None
        return model.model_dump(mode="json")


def tool(
    name: str | None = None,
    *,
    description: str | None = None,
    examples: Iterable[Example] = (),
    pooled: bool = True,
    audited: bool = True,
    read_only: bool = False,
    hints: ToolHints = ToolHints(),
) -> Callable[[Handler], Tool]:
    """Make a Tool from `async def name(args: In, ctx: CallContext) -> Out`.

    The models come from the annotations, the description from the docstring. Say
    `read_only=True` only of a tool that changes nothing (queries); the default is the
    safe one: a call through a queue group is then claimed, and runs at most once.
    `hints` say more about its effects (destructive, idempotent, open world).
    """

    def wrap(fn: Handler) -> Tool:
        types = get_type_hints(fn)
        params = [p for p in inspect.signature(fn).parameters if p != "return"]
        if not params or params[0] not in types or "return" not in types:
            raise ToolDefinitionError(
                f"{fn.__name__}: annotate the input model and the return model"
            )
        doc = description or inspect.getdoc(fn) or ""
        return Tool(
            name=name or fn.__name__,
            description=doc.strip(),
            input_model=types[params[0]],
            output_model=types["return"],
            handler=fn,
            examples=tuple(examples),
            pooled=pooled,
            audited=audited,
            read_only=read_only,
            hints=hints,
        )

    return wrap


class ToolRegistry:
    """The tools of one agent, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> None:
        if t.name in self._tools:
            raise ToolDefinitionError(f"a tool named {t.name!r} is already registered")
        self._tools[t.name] = t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        return [self._tools[n].spec() for n in self.names()]

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)
