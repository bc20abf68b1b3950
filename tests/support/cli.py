"""The command-line programs as a user runs them: this environment's `amcp` (or
`amcp-agent`) console script as a subprocess, output captured as text, stdin closed, with
a timeout so a hung command fails the test instead of the run. The one place tests start
the CLI: `amcp` runs a command to its end, `amcp_async` does the same from a coroutine
(the test's event loop keeps serving its own buses meanwhile), `start` and `start_async`
leave it running in the background."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["amcp", "amcp_async", "amcp_json", "argv", "start", "start_async"]

# stdout or stderr of a subprocess: PIPE, DEVNULL, a file descriptor or an open file
Output = int | IO[Any] | None


def argv(args: Sequence[str], program: str | Sequence[str] = "amcp") -> list[str]:
    """The command line: `program` is a console script of this environment (found beside
    the interpreter first, so the editable install is the one run) or an argv prefix."""
    if not isinstance(program, str):
        return [*program, *args]
    path = Path(sys.executable).parent / program
    return [str(path) if path.exists() else (shutil.which(program) or program), *args]


def amcp(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    program: str | Sequence[str] = "amcp",
    stdout: Output = subprocess.PIPE,
) -> subprocess.CompletedProcess[str]:
    """Run `amcp ARGS` to its end (`env` None: this process's environment)."""
    return subprocess.run(
        argv(args, program),
        stdout=stdout,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        timeout=timeout,
    )


async def amcp_async(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`amcp` from a coroutine: the event loop runs on while the command does (it may be
    waiting for agents or stores in this very process). An asyncio subprocess, not a
    thread: a few commands side by side must not take the threads those stores fsync in."""
    proc = await start_async(*args, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise subprocess.TimeoutExpired(argv(args), timeout) from None
    assert proc.returncode is not None
    return subprocess.CompletedProcess(argv(args), proc.returncode, out.decode(), err.decode())


async def amcp_json(*args: str, env: dict[str, str] | None = None) -> Any:
    """The document `amcp ARGS --json` prints; the command must succeed."""
    done = await amcp_async(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start(
    *args: str,
    env: dict[str, str] | None = None,
    program: str | Sequence[str] = "amcp",
    stdout: Output = subprocess.PIPE,
    stderr: Output = subprocess.PIPE,
    cwd: Path | None = None,
) -> subprocess.Popen[str]:
    """Start `amcp ARGS` in the background; the caller waits for it or kills it."""
    return subprocess.Popen(
        argv(args, program),
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=cwd,
    )


async def start_async(
    *args: str,
    env: dict[str, str] | None = None,
    stdout: Output = subprocess.PIPE,
    stderr: Output = subprocess.PIPE,
) -> asyncio.subprocess.Process:
    """`start` for a coroutine that reads the output with the event loop running: its
    pipes are asyncio streams of bytes."""
    return await asyncio.create_subprocess_exec(
        *argv(args), stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env
    )
