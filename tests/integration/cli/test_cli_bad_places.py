"""Arguments a new user got wrong, each refused in one line naming what was wrong, with exit
2 and no traceback, before the command starts anything: paths that are files or cannot be
made, addresses this host cannot listen on, numbers that are not finite or out of range,
malformed URLs. Real subprocesses against a real nats-server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from amcp.cli.common import EXIT_USAGE
from tests.support.cli import amcp


@pytest.fixture(scope="module")
def taken() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# (the arguments, words of the one-line error); {file} is a plain file, {taken} a port in use
AMCP = [
    (["server", "--host", "999.1.1.1"], "cannot listen on 999.1.1.1:4222"),
    (["server", "--host", "nosuch.invalid"], "cannot listen on nosuch.invalid:4222"),
    (["server", "--port", "{taken}"], "cannot listen on 127.0.0.1:{taken}: Address already in use"),
    (["server", "--store-dir", "/proc/amcp-nope"], "/proc/amcp-nope: No such file"),
    (["server", "--store-dir", "{file}"], "{file}: Not a directory"),
    (["ctx", "serve", "--data-dir", "{file}"], "{file}: File exists and is not a directory"),
    (["cluster", "up", "--data-dir", "{file}"], "{file}: Not a directory"),
    (["cluster", "secrets", "{file}"], "{file}: Not a directory"),
    (["cluster", "up", "--timeout", "nan"], "--timeout: must be more than 0"),
    (
        ["cluster", "secrets", "{dir}", "--route-port", "70000"],
        "--route-port: must be at least 1 and at most 65535",
    ),
    (["traffic", "--plot", "/nonexistent/dir/p.png"], "/nonexistent/dir is not a folder"),
    (["supervise", "--", "/nonexistent/cmd"], "/nonexistent/cmd: No such file"),
    (["send", "x.y", "{}", "--nats", "nats://127.0.0.1:99999"], "bad host or port"),
    (["call", "s1", "echo", "--timeout", "nan"], "--timeout: must be seconds"),
    (["listen", "x", "--timeout", "-1"], "--timeout: must be more than 0"),
    (["listen", "x", "--timeout", "nan"], "--timeout: must be more than 0"),
    (["traffic", "--seconds", "inf"], "--seconds must be at least 2"),
]
AGENT = [
    (["--data-dir", "{file}"], "{file}: File exists and is not a directory"),
    (["--metrics-port", "{taken}"], "cannot serve metrics on 127.0.0.1:{taken}"),
    (["--metrics-host", "999.9.9.9", "--metrics-port", "0"], "cannot serve metrics on 999.9.9.9"),
    (["--heartbeat", "nan"], "--heartbeat: must be more than 0"),
    (["--heartbeat", "0"], "--heartbeat: must be more than 0"),  # was silently 1.0
    (["--drain-timeout", "-1"], "--drain-timeout: must be at least 0"),
    (["--metrics-port", "70000"], "--metrics-port: must be at least 0 and at most 65535"),
]


def _refused(done, words: str, started: float) -> None:
    assert done.returncode == EXIT_USAGE, (done.returncode, done.stderr[-500:])
    line = done.stderr.strip().splitlines()[-1]  # an agent may warn (no roster) before
    assert "Traceback" not in done.stderr and words in line, done.stderr[-500:]
    assert time.monotonic() - started < 20  # refused up front, not after observing


def _fill(args: list[str], tmp_path: Path, taken: int) -> list[str]:
    (tmp_path / "a-file").touch()
    places = {
        "{file}": str(tmp_path / "a-file"),
        "{dir}": str(tmp_path / "d"),
        "{taken}": str(taken),
    }
    out = []
    for arg in args:
        for key, value in places.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


@pytest.mark.parametrize("args, words", AMCP, ids=[" ".join(a[:2]) for a, _ in AMCP])
def test_amcp_refuses_in_one_line(
    args: list[str], words: str, cli_env: dict[str, str], tmp_path: Path, taken: int
) -> None:
    started = time.monotonic()
    done = amcp(*_fill(args, tmp_path, taken), env=cli_env)
    _refused(done, _fill([words], tmp_path, taken)[0], started)


@pytest.mark.parametrize("args, words", AGENT, ids=[a[0] for a, _ in AGENT])
def test_amcp_agent_refuses_in_one_line(
    args: list[str], words: str, cli_env: dict[str, str], tmp_path: Path, taken: int
) -> None:
    started = time.monotonic()
    argv = ["--role", "s1", "--cluster", "bad-places", *_fill(args, tmp_path, taken)]
    done = amcp(*argv, env=cli_env, program="amcp-agent")
    _refused(done, _fill([words], tmp_path, taken)[0], started)


def test_a_heartbeat_from_the_environment_must_be_finite(cli_env: dict[str, str]) -> None:
    started = time.monotonic()
    env = {**cli_env, "AMCP_HEARTBEAT": "nan"}
    done = amcp("--role", "s1", env=env, program="amcp-agent")
    _refused(done, "$AMCP_HEARTBEAT must be a finite number", started)
