"""An ephemeral worker: an `amcp-agent --role s1` process spawned for one subtask, called
once, stopped. The I/O half of delegation.

A worker is started in a process group of its own with PR_SET_PDEATHSIG (SIGTERM), so if
the orchestrator dies, however it dies, its workers stop too (an S1 agent's own executor
children die with it in turn: agents.vsm.s1.executors). The subtask is sent to the
worker's own call subject as soon as the worker subscribes: "no responders" means it was
not delivered, so the call is sent again, until the worker answers, exits or the deadline
passes. `stop` always ends the process: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.runtime.subjects import AgentSubjects, call_request, parse_reply
from agents.vsm.s1.executors import parent_death_preexec
from agents.vsm.tasks import StepIn, StepOut
from amcp.bus import Bus
from amcp.errors import AmcpError, NoResponders, RequestTimeout

__all__ = ["Attempt", "Worker", "WorkerTemplate"]

STOP_GRACE = 3.0  # seconds a worker has to leave the cluster after SIGTERM
REPLY_GRACE = 5.0  # beyond the step's own timeout, for the reply to arrive
_POLL_FIRST, _POLL_MAX = 0.005, 0.05  # "no responders" retries while it starts
_LOG_TAIL = 600
_PREEXEC = parent_death_preexec(signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class WorkerTemplate:
    """How a worker is started: `argv` (an `amcp-agent` command without --id) and its
    environment (None: the orchestrator's). `identities` are (agent id, key file) pairs,
    one per pool slot: where a roster is in force a worker must be an agent it holds, so
    the worker in slot n runs as the n-th (one at a time: the pool's permit is the slot)."""

    argv: tuple[str, ...]
    env: dict[str, str] | None = None
    identities: tuple[tuple[str, str], ...] = ()

    def identity(self, slot: int) -> tuple[str, str] | None:
        return self.identities[slot] if self.identities else None

    @classmethod
    def s1(cls, executor: str, connection: Sequence[str] = ()) -> WorkerTemplate:
        """An S1 agent that runs `executor` steps, one call at a time, quick to stop."""
        argv = (sys.executable, "-m", "agents.cli.agent", "--role", "s1")
        argv += ("--capability", executor, "--pool", "1", "--queue", "1")
        argv += ("--drain-timeout", "1", "--log-level", "warning", *connection)
        return cls(argv)


@dataclass(slots=True)
class Attempt:
    """One run of a subtask (or its alternative) on one worker; times are time.time()."""

    worker: str
    text: str
    alternative: bool = False
    pid: int | None = None
    spawned: float = 0.0
    exited: float | None = None
    running_after: float | None = None  # seconds from spawn to the step running
    ok: bool = False
    output: str = ""
    error: str | None = None
    exit_code: int | None = None
    timed_out: bool = False
    worker_exit: int | None = None

    def report(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "text": self.text,
            "alternative": self.alternative,
            "pid": self.pid,
            "spawned": self.spawned,
            "exited": self.exited,
            "running_after_ms": None
            if self.running_after is None
            else round(self.running_after * 1000, 1),
            "ok": self.ok,
            "error": self.error,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "worker_exit": self.worker_exit,
        }


class Worker:
    """One worker process; `run` it once, then `stop` it (in a finally)."""

    def __init__(
        self, template: WorkerTemplate, worker_id: str, log_dir: Path, identity: str | None = None
    ) -> None:
        self.template = template
        self.id = worker_id
        self.identity = identity  # its key file, if it signs as an agent of the roster
        self.log_path = log_dir / f"{worker_id}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def spawn(self, attempt: Attempt) -> None:
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            attempt.spawned = time.time()
            own = ("--identity", self.identity) if self.identity else ()
            self.proc = await asyncio.create_subprocess_exec(
                *self.template.argv,
                *own,
                "--id",
                self.id,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.template.env,
                start_new_session=True,
                preexec_fn=_PREEXEC,
            )
        finally:
            os.close(log)
        attempt.pid = self.proc.pid

    async def run(self, bus: Bus, step: StepIn, attempt: Attempt) -> None:
        """Send the step to the worker once it listens; fill `attempt` with the outcome."""
        assert self.proc is not None
        subject = AgentSubjects(bus.subjects).call(self.id)
        body = call_request("execute", step.model_dump())
        deadline = time.monotonic() + step.timeout + REPLY_GRACE
        exited = asyncio.ensure_future(self.proc.wait())
        try:
            reply = await self._deliver(bus, subject, body, deadline, exited)
        finally:
            exited.cancel()
        if reply is None:
            return self._lost(attempt, deadline)
        received = time.time()
        try:
            _, output = parse_reply(reply)
            out = StepOut.model_validate(output)
        except (AmcpError, ValueError) as exc:
            attempt.error = f"worker {self.id}: {exc}"
            return None
        attempt.running_after = max(0.0, received - out.ms / 1000 - attempt.spawned)
        attempt.ok, attempt.output = out.ok, out.stdout
        attempt.exit_code, attempt.timed_out = out.exit_code, out.timed_out
        if not out.ok:
            why = out.error or f"exit {out.exit_code}"
            detail = out.stderr.strip().splitlines()[-1:] if out.stderr.strip() else []
            attempt.error = why + (f": {detail[0][:200]}" if detail else "")
        return None

    async def _deliver(
        self, bus: Bus, subject: str, body: Any, deadline: float, exited: asyncio.Future[int]
    ) -> Any:
        """The reply's body, or None if the worker exited or the deadline passed first."""
        delay = _POLL_FIRST
        while not exited.done():
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            request = asyncio.ensure_future(bus.request(subject, body, timeout=left))
            try:
                await asyncio.wait({request, exited}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not request.done():  # the worker died with the step, or we are cancelled
                    request.cancel()
                    with contextlib.suppress(asyncio.CancelledError, AmcpError):
                        await request
            if request.cancelled():
                return None
            try:
                return request.result().body
            except NoResponders:  # not subscribed yet: nothing was delivered
                await asyncio.wait({exited}, timeout=delay)
                delay = min(delay * 2, _POLL_MAX)
            except RequestTimeout:
                return None
        return None

    def _lost(self, attempt: Attempt, deadline: float) -> None:
        assert self.proc is not None
        if self.proc.returncode is not None:
            tail = self.log_tail()
            attempt.error = f"worker {self.id} exited with {self.proc.returncode}" + (
                f": {tail}" if tail else ""
            )
        elif time.monotonic() >= deadline:
            attempt.timed_out = True
            attempt.error = f"worker {self.id} gave no answer in time"
        else:
            attempt.error = f"worker {self.id} gave no answer"

    def log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return " ".join(text.splitlines()[-2:])[-_LOG_TAIL:]

    async def stop(self, attempt: Attempt | None = None) -> None:
        """End the worker: SIGTERM (it leaves the cluster), SIGKILL past
        STOP_GRACE. Safe under cancellation: the process is reaped whatever happens."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), STOP_GRACE)
        finally:
            if proc.returncode is None:  # its executors die with it (their PDEATHSIG)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.shield(proc.wait())
            if attempt is not None:
                attempt.exited, attempt.worker_exit = time.time(), proc.returncode
