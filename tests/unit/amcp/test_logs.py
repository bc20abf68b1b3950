"""JSON log lines carry the trace and span ids of the span current where they were made."""

from __future__ import annotations

import io
import json
import logging

from amcp.logs import JsonFormatter, TraceFields
from amcp.tracing import new_trace, use_span


def test_a_json_line_in_a_span_carries_its_ids_and_one_outside_none() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TraceFields())
    logger = logging.getLogger("test.logs.trace")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        span = new_trace()
        with use_span(span):
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert (inside["msg"], inside["trace_id"], inside["span_id"]) == (
        "inside",
        span.trace_id,
        span.span_id,
    )
    assert "trace_id" not in outside and "span_id" not in outside
