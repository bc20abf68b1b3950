"""The span of one run of the command line: the root of the trace its messages start, or a
child of `TRACEPARENT` when the environment names one (CI systems, the MCP bridge).

It begins when the command first connects as a traced command (amcp.cli.common), so a
command that never touches the bus, or one that serves (`amcp mcp`, `ctx serve`) and works
in the spans its requests bring, records none. It ends with the exit code and goes to the
span listeners: exported through OpenTelemetry, the agents' spans have their parent.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

from amcp.tracing import Span, SpanContext, environ_parent, new_trace

__all__ = ["CommandSpan", "running_command"]

# Outcomes by exit code (amcp.cli.common's EXIT_*), in the words amcp.telemetry marks as
# failed: what a tracing backend shows as the status.
_OUTCOMES = {0: "ok", 1: "failed", 2: "invalid", 3: "timeout", 5: "refused", 130: "cancelled"}


class CommandSpan:
    """The span of the command `name`, begun on first use and ended once with an exit code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.span: Span | None = None

    def begin(self, agent: str = "cli") -> SpanContext:
        """The command's span context, begun now if this is the first call."""
        if self.span is None:
            parent = environ_parent()
            self.span = Span(
                new_trace() if parent is None else parent.child(),
                None if parent is None else parent.span_id,
                self.name,
                agent,
                time.time_ns(),
                {"messaging.operation.type": "send"},
            )
        return self.span.context

    def sent_as(self, sender: str) -> None:
        """Name the span's agent after the bus's sender id, once the bus has one."""
        if self.span is not None:
            self.span.agent = sender

    def end(self, exit_code: int) -> None:
        """Record the span (once) with the outcome the exit code means."""
        if self.span is not None and self.span.record is None:
            self.span.attributes["exit_code"] = exit_code
            self.span.end(_OUTCOMES.get(exit_code, "error"))


# The command being run in this context (set by amcp.cli.main; None for a library caller).
running_command: ContextVar[CommandSpan | None] = ContextVar("amcp_command", default=None)
