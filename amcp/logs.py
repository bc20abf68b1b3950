"""Logging set-up: human lines by default, one JSON object a line with --log-json, which
carries the trace and span ids of the span current where the record was made (amcp.tracing),
so a log line can be found from a trace and the other way round."""

from __future__ import annotations

import json
import logging
import sys
import time

from amcp.tracing import current_span

__all__ = ["JsonFormatter", "TraceFields", "setup_logging"]


class TraceFields(logging.Filter):
    """Adds `trace_id` and `span_id` to a record made while a span is current."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = current_span.get()
        if span is not None and not hasattr(record, "trace_id"):
            record.trace_id = span.trace_id
            record.span_id = span.span_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, and any `extra` fields."""

    _skip = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str = "warning", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    if json_lines:
        handler.addFilter(TraceFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("nats").setLevel(logging.CRITICAL)  # we log connection events ourselves
