"""The command line and OpenTelemetry: imported only when the OTEL_* variables ask, a bad
exporter name is one line and exit 2, and a missing extra is a warning, not a failure."""

from __future__ import annotations

import sys

from tests.support.cli import amcp

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
