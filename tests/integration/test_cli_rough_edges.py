"""Rough edges a new user hit with the `amcp` CLI (issue 13 point 7): real subprocesses
against a real nats-server."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import amcp_bin


def run_into_closed_pipe(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader has gone, as `amcp ... | head -1` leaves it."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            args,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "args, code",
    [
        (["send", "x.y", "{}"], 0),
        (["send", "x.y", "{}", "--json"], 0),
        (["coordinate", "--action", "restart", "--timeout", "0.3"], 3),
    ],
)
def test_a_closed_stdout_exits_quietly_with_the_commands_own_code(
    args: list[str], code: int, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "AMCP_CLUSTER": "pipe-test"}
    done = run_into_closed_pipe([amcp_bin(), *args], env)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
