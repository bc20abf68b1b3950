"""A raw JSON schema as a tool's input or output, where there is no pydantic model (an
external MCP server's tools come with a schema only).

The schema is checked once, when the tool is defined; each value is then validated with
the `jsonschema` package (a dependency of the MCP SDK, so `amcp[mcp]` brings it), and the
errors come back in the shape pydantic's take in a tool's replies: where, what, which rule.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["RawSchema"]


class RawSchema:
    """A JSON schema and its validator (the dialect its `$schema` names; 2020-12 if none)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        try:
            from jsonschema import Draft202012Validator, SchemaError
            from jsonschema.validators import validator_for
        except ImportError:  # only raw-schema tools need it: the base install has none
            raise ValueError(
                "a raw JSON schema needs the jsonschema package: pip install 'amcp[mcp]'"
            ) from None
        self.schema: dict[str, Any] = copy.deepcopy(dict(schema))
        cls = validator_for(self.schema, default=Draft202012Validator)
        try:
            cls.check_schema(self.schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        self._validator = cls(self.schema)

    def errors(self, value: Any) -> list[dict[str, Any]]:
        """Why `value` does not fit, outermost first; empty when it does."""
        found = sorted(
            self._validator.iter_errors(value), key=lambda e: (len(e.absolute_path), e.message)
        )
        return [
            {"loc": list(e.absolute_path), "msg": e.message, "type": str(e.validator)}
            for e in found
        ]
