"""The command line and OpenTelemetry: imported only when the OTEL_* variables ask, a bad
exporter name is one line and exit 2, and a missing extra is a warning, not a failure."""

from __future__ import annotations

import json
import sys

from amcp.tracing import new_trace
from tests.support.cli import amcp, amcp_async

# `amcp` run by this interpreter with OpenTelemetry made unimportable (the extra missing).
WITHOUT_OTEL = [
    sys.executable,
    "-c",
    "import sys; sys.modules['opentelemetry'] = None; "
    "from amcp.cli.main import main; sys.exit(main())",
]


def imported_otel(done_stderr: str) -> bool:
    return any(" opentelemetry" in line for line in done_stderr.splitlines())


def test_opentelemetry_is_imported_only_when_asked(cli_env: dict[str, str]) -> None:
    program = [sys.executable, "-X", "importtime", "-m", "amcp.cli.main"]
    plain = amcp("keys", "list", env=cli_env, program=program)
    assert plain.returncode == 0, plain.stderr
    assert not imported_otel(plain.stderr)
    named = amcp("keys", "list", env={**cli_env, "OTEL_SERVICE_NAME": "x"}, program=program)
    assert named.returncode == 0 and not imported_otel(named.stderr)  # a name exports nothing
    asked = {**cli_env, "OTEL_TRACES_EXPORTER": "console"}
    exporting = amcp("keys", "list", env=asked, program=program)
    assert exporting.returncode == 0, exporting.stderr
    assert imported_otel(exporting.stderr)  # the check above can see an import


def test_a_bad_exporter_is_one_line_and_exit_2(cli_env: dict[str, str]) -> None:
    done = amcp("keys", "list", env={**cli_env, "OTEL_TRACES_EXPORTER": "zipkinish"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "amcp: OTEL_TRACES_EXPORTER: no span exporter 'zipkinish' is installed"
    ]


def test_without_the_extra_the_command_runs_and_says_so(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "OTEL_TRACES_EXPORTER": "console"}
    done = amcp("--log-level", "warning", "keys", "list", env=env, program=WITHOUT_OTEL)
    assert done.returncode == 0, done.stderr
    assert "amcp[otel] is not installed" in done.stderr and "signing" in done.stdout


def console_spans(stderr: str) -> list[dict]:
    """The spans the console exporter wrote (pretty JSON objects) among other stderr lines."""
    spans, depth, lines = [], 0, []
    for line in stderr.splitlines():
        if line == "{":
            depth, lines = 1, [line]
        elif depth:
            lines.append(line)
            if line == "}":
                spans.append(json.loads("\n".join(lines)))
                depth = 0
    return spans


async def test_a_command_exports_its_own_span_as_the_parent_of_what_it_sends(
    cli_env: dict[str, str], make_bus
) -> None:
    caller = new_trace()
    env = {**cli_env, "OTEL_TRACES_EXPORTER": "console", "TRACEPARENT": caller.traceparent}
    listener = await make_bus("otel-listener")
    sub = await listener.subscribe("t.otel")
    await listener.flush()
    done = await amcp_async("send", "t.otel", '{"n": 1}', env=env)
    assert done.returncode == 0, done.stderr
    received = await sub.next(timeout=10)
    (span,) = [s for s in console_spans(done.stderr) if s["name"] == "cli.send"]
    assert span["context"]["trace_id"] == f"0x{caller.trace_id}"
    assert span["parent_id"] == f"0x{caller.span_id}"  # under the caller's TRACEPARENT
    assert span["context"]["span_id"] == f"0x{received.trace.span_id}"  # what it sent is in it
    assert span["attributes"]["amcp.exit_code"] == 0 and span["status"]["status_code"] == "UNSET"


def test_a_failed_command_span_says_why(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "OTEL_TRACES_EXPORTER": "console", "AMCP_NATS_URL": "nats://127.0.0.1:1"}
    done = amcp("send", "t.otel", "{}", env=env)
    assert done.returncode == 4
    (span,) = [s for s in console_spans(done.stderr) if s["name"] == "cli.send"]
    assert span["parent_id"] is None  # no TRACEPARENT: the root of a trace of its own
    assert span["status"]["status_code"] == "ERROR" and span["attributes"]["amcp.exit_code"] == 4


def test_a_command_that_never_connects_records_no_span(cli_env: dict[str, str]) -> None:
    done = amcp("keys", "list", env={**cli_env, "OTEL_TRACES_EXPORTER": "console"})
    assert done.returncode == 0 and console_spans(done.stderr) == []
