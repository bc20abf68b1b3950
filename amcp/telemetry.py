"""OpenTelemetry export of amcp's spans (the optional extra `amcp[otel]`).

Every finished span (amcp.tracing: the audit log's spans and the command line's) becomes an
OpenTelemetry span with the SAME trace id, span id and parent, so what a tracing backend
shows matches `amcp trace`. Spans are built as the SDK's `ReadableSpan` and handed to a span
processor, not re-timed by a tracer: the ids and times are the audit log's. Names and
attributes follow the OpenTelemetry messaging conventions (`messaging.system=nats`, the
subject family as `messaging.destination.name`, `messaging.operation.*`); a tool span is
named `execute_tool <tool>` with `gen_ai.tool.name`, as the GenAI conventions name one.

Configured by the standard variables: OTEL_TRACES_EXPORTER (console, otlp, none, or any
installed exporter's entry point name, comma-separated), OTEL_EXPORTER_OTLP_* for OTLP,
OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, OTEL_SDK_DISABLED. Without them, or without
the extra, nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from amcp.errors import ConfigError
from amcp.tracing import SpanRecord, add_span_listener, remove_span_listener

__all__ = ["SpanExport", "export_from_env", "wanted"]

log = logging.getLogger("amcp.telemetry")

_ERRORS = frozenset({"error", "failed", "timeout", "cancelled", "refused", "invalid"})
_SCALARS = (str, bool, int, float)
_TOOL_PREFIXES = ("tool.", "execute.")


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for spans to be exported: an exporter other than
    "none" is named, or an OTLP endpoint is set; never with OTEL_SDK_DISABLED=true."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return any(name.strip() not in ("", "none") for name in exporters.split(","))
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _tool(record: SpanRecord) -> str | None:
    tool = record.attributes.get("tool")
    if isinstance(tool, str) and tool:
        return tool
    for prefix in _TOOL_PREFIXES:
        if record.name.startswith(prefix) and len(record.name) > len(prefix):
            return record.name[len(prefix) :]
    return None


def _name(record: SpanRecord) -> str:
    """`execute_tool <tool>` for a tool's span; else `<operation> <subject family>` (the
    messaging conventions' `{operation name} {destination}`), or the operation alone."""
    tool = _tool(record)
    if tool is not None:
        return f"execute_tool {tool}"
    family = record.attributes.get("family")
    return f"{record.name} {family}" if isinstance(family, str) and family else record.name


def _value(value: Any) -> Any:
    """An attribute value OpenTelemetry accepts: scalars and lists of one scalar type as they
    are, anything else as JSON text."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return json.dumps(value, default=str, sort_keys=True)


def _attributes(record: SpanRecord) -> dict[str, Any]:
    """The span's attributes under the messaging conventions, amcp's own under `amcp.`."""
    attrs = record.attributes
    out: dict[str, Any] = {
        "messaging.system": "nats",
        "messaging.operation.name": record.name,
        "messaging.operation.type": str(attrs.get("messaging.operation.type", "process")),
        "amcp.agent": record.agent,
        "amcp.outcome": record.outcome,
    }
    family = attrs.get("family")
    if isinstance(family, str) and family:
        out["messaging.destination.name"] = family
    tool = _tool(record)
    if tool is not None:
        out["gen_ai.tool.name"] = tool
        out["gen_ai.operation.name"] = "execute_tool"
    for key, value in attrs.items():
        if value is None or key in ("family", "messaging.operation.type"):
            continue
        out[key if key.startswith(("messaging.", "gen_ai.")) else f"amcp.{key}"] = _value(value)
    return out


class SpanExport:
    """A span listener that hands each amcp span, as an OpenTelemetry span, to `processor`
    (an SDK SpanProcessor: BatchSpanProcessor to an exporter, or a test's in-memory one)."""

    def __init__(self, processor: Any, resource: Any = None) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from amcp import __version__

        self.processor = processor
        self.resource = resource if resource is not None else Resource.create()
        self._scope = InstrumentationScope("amcp", __version__)
        self._installed = False

    def span(self, record: SpanRecord) -> Any:
        """`record` as an SDK ReadableSpan with its own ids, parent and times."""
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        trace_id = int(record.trace_id, 16)
        flags = TraceFlags(0x01)  # a span recorded is a span sampled
        context = SpanContext(trace_id, int(record.span_id, 16), False, flags)
        parent = (
            None
            if record.parent_id is None
            else SpanContext(trace_id, int(record.parent_id, 16), True, flags)
        )
        failed = record.outcome in _ERRORS
        return ReadableSpan(
            _name(record),
            context=context,
            parent=parent,
            resource=self.resource,
            attributes=_attributes(record),
            kind=SpanKind.SERVER if _tool(record) is not None else SpanKind.INTERNAL,
            status=Status(StatusCode.ERROR, record.outcome) if failed else Status(StatusCode.UNSET),
            start_time=record.start_ns,
            end_time=record.end_ns,
            instrumentation_scope=self._scope,
        )

    def __call__(self, record: SpanRecord) -> None:
        self.processor.on_end(self.span(record))

    def install(self) -> SpanExport:
        """Receive every span from now on (amcp.tracing's listeners); flushed at exit."""
        if not self._installed:
            add_span_listener(self)
            atexit.register(self.shutdown)
            self._installed = True
        return self

    def shutdown(self) -> None:
        """Stop listening and send what is still queued."""
        if self._installed:
            remove_span_listener(self)
            atexit.unregister(self.shutdown)
            self._installed = False
        self.processor.shutdown()


def _exporter(name: str, env: Mapping[str, str]) -> Any:
    """The SDK exporter OTEL_TRACES_EXPORTER names. The console's writes to stderr, so a
    command's own output stays clean; `otlp` is OTLP over HTTP unless grpc is asked for."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)
    if name == "otlp":
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        name = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
    from importlib.metadata import entry_points

    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise ConfigError(f"OTEL_TRACES_EXPORTER: no span exporter {name!r} is installed")
    return next(iter(found)).load()()


def export_from_env(
    service: str, env: Mapping[str, str] | None = None, **resource: Any
) -> SpanExport | None:
    """Export every span as the OTEL_* variables say (see the module doc), as `service`
    unless OTEL_SERVICE_NAME names another; None when they ask for nothing or the extra
    is missing (logged once). ConfigError for an exporter that is not installed."""
    env = os.environ if env is None else env
    if not wanted(env):
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        log.warning("OTEL_* asks for spans but amcp[otel] is not installed: none exported")
        return None
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")]
    processors = [
        SimpleSpanProcessor(_exporter(n, env))
        if n == "console"
        else BatchSpanProcessor(_exporter(n, env))
        for n in names
        if n and n != "none"
    ]
    attributes = {k: v for k, v in resource.items() if v is not None}
    # OTEL_SERVICE_NAME first, then a service.name in OTEL_RESOURCE_ATTRIBUTES (which
    # Resource.create reads), then ours.
    if env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = env["OTEL_SERVICE_NAME"]
    elif "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        attributes["service.name"] = service
    base = Resource.create(attributes)
    if len(processors) == 1:
        return SpanExport(processors[0], base).install()
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor

    both = SynchronousMultiSpanProcessor()
    for p in processors:
        both.add_span_processor(p)
    return SpanExport(both, base).install()
