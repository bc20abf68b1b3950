"""S1's executors: how one step runs.

- shell: `/bin/sh -c TEXT` in the step's working directory;
- cli: an external command from an argument template (an LLM agent such as
  ["claude", "-p", "{text}"], or "{prompt}" for the rendered prompt template), run
  without a shell so the text cannot inject commands;
  nor options: an argument that the filled-in text makes start with `-` is refused unless
  the template has `--` before it (`sort -- {text}`), since `sort {text}` with the text
  `-oFILE` would write FILE (put a value that may start with `-` in `--opt={text}`);
- python: a callable registered under the `amcp.executors` entry-point group, given the
  step as a dict; its return value (or raised error) is the output.

A child process gets stdin closed, its own process group (a timeout ends the whole group),
and on Linux dies with the agent (PR_SET_PDEATHSIG), so an S1 killed mid-task leaves no
half-finished command running on. Output is captured and capped per stream; the rest is
read and dropped so a chatty child never blocks on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import inspect
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.runtime.entrypoints import load_callable
from agents.vsm.tasks import StepIn

__all__ = [
    "EXECUTORS",
    "EXECUTOR_GROUP",
    "RunOutcome",
    "execute",
    "noop",
    "parent_death_preexec",
    "render_template",
    "resource_digest",
    "run_argv",
]

EXECUTOR_GROUP = "amcp.executors"
EXECUTORS = ("shell", "python", "cli")
KILL_GRACE = 1.0  # seconds between SIGTERM and SIGKILL of a timed-out group
PIPE_GRACE = 0.5  # seconds to finish reading after the child exits (a background grandchild
#                   may hold the pipes open; its group is then ended)
_CHUNK = 65536
_DIGEST_MAX = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RunOutcome:
    ok: bool
    exit_code: int | None = None
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    error: str | None = None


def noop(step: Mapping[str, Any]) -> str:
    """The do-nothing executor (`amcp.executors` entry point `noop`): benchmarks the loop."""
    return ""


def parent_death_preexec(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A preexec function that sends the child `sig` when this process dies (Linux only;
    None elsewhere). Delegation's workers get SIGTERM, to leave the cluster as they stop."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(1, sig)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(137)

    return preexec


_PREEXEC = parent_death_preexec()


class _Capped:
    """Keeps the first `limit` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_CHUNK):
            room = self.limit - len(self.data)
            self.data += chunk[:room]
            self.dropped += max(0, len(chunk) - room)

    def text(self) -> str:
        """The kept bytes as text, at most `limit` bytes once encoded: an invalid byte
        becomes U+FFFD, three bytes, so binary output would otherwise triple past the cap."""
        text = self.data.decode("utf-8", errors="replace")
        encoded = text.encode()
        if len(encoded) > self.limit:
            self.dropped += len(encoded) - self.limit
            text = encoded[: self.limit].decode("utf-8", errors="ignore")
        return text


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Return when the child has exited. `Process.wait` also waits for its pipes to close,
    which a background grandchild can hold open for ever; the exit status is set as soon
    as the child is reaped, so it is polled beside (from 1 ms, backing off to 50 ms)."""
    waiting = asyncio.ensure_future(proc.wait())
    delay = 0.001
    try:
        while proc.returncode is None and not waiting.done():
            await asyncio.wait({waiting}, timeout=delay)
            delay = min(delay * 2, 0.05)
    finally:
        waiting.cancel()


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_argv(
    argv: list[str], *, cwd: str | None, timeout: float, max_output: int
) -> RunOutcome:
    """Run a command with stdin closed; the exit status and capped output, or why not."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_PREEXEC,
        )
    except OSError as exc:
        return RunOutcome(False, error=f"cannot run {argv[0]!r}: {exc.strerror or exc}")
    assert proc.stdout is not None and proc.stderr is not None
    out, err = _Capped(max_output), _Capped(max_output)
    readers = asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr))
    timed_out = False
    try:
        await asyncio.wait_for(_exited(proc), timeout)
    except TimeoutError:
        timed_out = True
        _kill_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(_exited(proc), KILL_GRACE)
        except TimeoutError:
            _kill_group(proc.pid, signal.SIGKILL)
            await _exited(proc)
    except asyncio.CancelledError:
        _kill_group(proc.pid, signal.SIGKILL)
        readers.cancel()
        raise
    try:
        await asyncio.wait_for(asyncio.shield(readers), PIPE_GRACE)
    except TimeoutError:  # a grandchild keeps the pipes open: end the group, keep what we read
        _kill_group(proc.pid, signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(readers), KILL_GRACE)
        except TimeoutError:  # it left the group (setsid): leave its pipes to it
            readers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await readers
    with contextlib.suppress(TimeoutError):  # pipes closed: let the transport finish
        await asyncio.wait_for(proc.wait(), PIPE_GRACE)
    code = proc.returncode
    return RunOutcome(
        ok=code == 0 and not timed_out,
        exit_code=code,
        timed_out=timed_out,
        stdout=out.text(),
        stderr=err.text(),
        truncated=bool(out.dropped or err.dropped),
        error=f"timed out after {timeout:g}s" if timed_out else None,
    )


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


def render_template(template: list[str], fields: Mapping[str, str]) -> list[str]:
    """Each argument with its {placeholders} filled; ValueError names an unknown one, or an
    argument the fields turn into an option (it starts with `-` only once filled in) where
    no `--` before it ends the command's options."""
    try:
        argv = [arg.format_map(_Fields(fields)) for arg in template]
    except KeyError as exc:
        known = ", ".join("{" + k + "}" for k in fields)
        raise ValueError(
            f"unknown placeholder {{{exc.args[0]}}} in template; use {known}"
        ) from None
    except (ValueError, IndexError) as exc:
        raise ValueError(f"bad template: {exc}") from None
    ended = template.index("--") if "--" in template else len(template)
    for i, (arg, filled) in enumerate(zip(template[:ended], argv, strict=False)):
        if filled.startswith("-") and not arg.startswith("-") and i > 0:
            raise ValueError(
                f"argument {arg!r} would start with '-' and be read as an option by "
                f"{template[0]!r}: refused; put -- before it in the template, or use "
                "--option={...} for a value"
            )
    return argv


def _load_callable(name: str) -> Callable[..., Any]:
    return load_callable(EXECUTOR_GROUP, name, "executor")


async def _run_python(step: StepIn) -> RunOutcome:
    try:
        fn = _load_callable(step.entry_point or "")
    except Exception as exc:
        return RunOutcome(False, error=str(exc))
    payload = step.model_dump()
    try:
        if inspect.iscoroutinefunction(fn):
            result = await asyncio.wait_for(fn(payload), step.timeout)
        else:  # a thread cannot be killed: past the timeout it is abandoned, not stopped
            result = await asyncio.wait_for(asyncio.to_thread(fn, payload), step.timeout)
    except TimeoutError:
        return RunOutcome(False, timed_out=True, error=f"timed out after {step.timeout:g}s")
    except Exception as exc:
        return RunOutcome(False, exit_code=1, stderr=f"{type(exc).__name__}: {exc}")
    text = "" if result is None else str(result)
    data = text.encode()
    kept = data[: step.max_output].decode("utf-8", errors="ignore")  # a cut character
    return RunOutcome(True, exit_code=0, stdout=kept, truncated=len(data) > step.max_output)


async def execute(step: StepIn, prompt: str | None = None) -> RunOutcome:
    """Run one step with the executor it names. A cli template's {prompt} is `prompt`
    (the rendered prompt template; the step's text when there is none)."""
    if step.cwd is not None and not await asyncio.to_thread(os.path.isdir, step.cwd):
        return RunOutcome(False, error=f"working directory {step.cwd} does not exist")
    if step.executor == "python":
        return await _run_python(step)
    if step.executor == "cli":
        fields = {
            "text": step.text,
            "prompt": step.text if prompt is None else prompt,
            "description": step.description or step.text,
            "task_id": step.task_id,
            "step": str(step.step),
            "cwd": step.cwd or os.getcwd(),
        }
        try:
            argv = render_template(step.template or [], fields)
        except ValueError as exc:
            return RunOutcome(False, error=str(exc))
    else:
        argv = ["/bin/sh", "-c", step.text]
    return await run_argv(argv, cwd=step.cwd, timeout=step.timeout, max_output=step.max_output)


def resource_digest(resource: str | None, cwd: str | None) -> str | None:
    """sha256 of the resource file after a step (None if it is not a readable file): what
    S2 compares to see a resource changed back and forth."""
    if not resource:
        return None
    path = Path(cwd or ".") / resource
    try:
        if not path.is_file() or path.stat().st_size > _DIGEST_MAX:
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None
