"""Running an agent's hooks (agents.runtime.hooks) at the edge: processes and callables.

`gate(event, ...)` runs the event's hooks in order and returns the first veto (audited as
`hook_vetoed`), or an allowing verdict; `notify(event, ...)` runs them in the background
for an event nobody waits on. Every hook has a deadline: a command still running then has
its whole process group killed, a callable is abandoned; either way the failure is logged
(rate-limited), counted in `status()` (the agent's heartbeat, so `amcp status`) and the
agent goes on. An agent with no hooks pays one dict lookup per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agents.runtime.entrypoints import load_callable
from agents.runtime.hooks import (
    HOOK_GROUP,
    PRE_VETO,
    HookConfig,
    HookSpec,
    Verdict,
    encode_payload,
    read_command,
    read_result,
)
from amcp.ratelog import RateLimitedLog

__all__ = ["VETOED", "HookRunner", "load_hook"]

log = logging.getLogger("agents.runtime.hooks")
VETOED = "hook_vetoed"  # the audit event of a veto
MAX_OUTPUT = 64 * 1024  # bytes of a command's stdout and stderr read
MAX_PENDING = 64  # background notifications in flight; past it new ones are dropped, counted
Audit = Callable[..., Awaitable[None]]


def load_hook(name: str) -> Callable[..., Any]:
    """The callable registered as `name` in the amcp.hooks entry points."""
    return load_callable(HOOK_GROUP, name, "hook")


class HookRunner:
    """One agent's hooks. `audit` (the agent's `record`) receives vetoes."""

    def __init__(
        self,
        config: HookConfig,
        agent: str,
        role: str,
        *,
        audit: Audit | None = None,
        load: Callable[[str], Callable[..., Any]] = load_hook,
    ) -> None:
        self.config = config
        self.agent = agent
        self.role = role
        self.audit = audit
        self._load = load
        self._pending: set[asyncio.Task[Any]] = set()
        self._ratelog = RateLimitedLog(log)
        self.counts: dict[str, dict[str, int]] = {}

    @property
    def active(self) -> bool:
        """Whether the agent has any hook (a hot path skips even building a payload)."""
        return bool(self.config.hooks)

    def wants(self, event: str) -> bool:
        return bool(self.config.at(event))

    async def gate(self, event: str, **fields: Any) -> Verdict:
        """Run `event`'s hooks in order; the first veto (only at a PRE_VETO event) stops
        them and is returned, after its audit entry is queued."""
        for spec in self.config.at(event):
            verdict = await self._run(spec, fields)
            if not verdict.allowed and event in PRE_VETO:
                if self.audit is not None:
                    await self.audit(VETOED, at=event, hook=verdict.hook, reason=verdict.reason)
                log.info("%s hook %s vetoed: %s", event, verdict.hook, verdict.reason)
                return verdict
        return Verdict()

    def notify(self, event: str, **fields: Any) -> None:
        """Run `event`'s hooks in the background (a post-event, or one that cannot veto)."""
        if not self.config.at(event):
            return
        if len(self._pending) >= MAX_PENDING:
            self._count(event, "dropped")
            self._ratelog.log(
                logging.WARNING, "dropped", "%d hooks running: %s hooks dropped", MAX_PENDING, event
            )
            return
        task = asyncio.get_running_loop().create_task(self.gate(event, **fields))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        """Wait for background hooks (each has its own deadline)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def status(self) -> dict[str, Any]:
        """Per event: ran, vetoed, failed, timed_out, dropped (only events with hooks)."""
        if not self.config.hooks:
            return {}
        totals: dict[str, int] = {}
        for counts in self.counts.values():
            for k, v in counts.items():
                totals[k] = totals.get(k, 0) + v
        return {"configured": len(self.config.hooks), "totals": totals, "events": self.counts}

    # -- one hook -----------------------------------------------------------------------

    def _count(self, event: str, what: str) -> None:
        counts = self.counts.setdefault(event, {})
        counts[what] = counts.get(what, 0) + 1

    async def _run(self, spec: HookSpec, fields: dict[str, Any]) -> Verdict:
        timeout = self.config.timeout_of(spec)
        started = time.perf_counter()
        try:
            if spec.kind == "command":
                verdict = await self._command(spec, fields, timeout)
            else:
                verdict = await self._callable(spec, fields, timeout)
        except TimeoutError:
            verdict = Verdict(hook=spec.name, failure=f"timed out after {timeout:g}s")
            self._count(spec.event, "timed_out")
        except Exception as exc:
            verdict = Verdict(hook=spec.name, failure=f"{type(exc).__name__}: {exc}")
        self._count(spec.event, "ran")
        if verdict.failure:
            self._count(spec.event, "failed")
            self._ratelog.log(
                logging.WARNING,
                f"{spec.event}:{spec.name}",
                "%s hook %s failed (%s) after %.0f ms; going on as if it allowed",
                spec.event,
                spec.name,
                verdict.failure,
                (time.perf_counter() - started) * 1000,
            )
            return Verdict(hook=spec.name, failure=verdict.failure)
        if not verdict.allowed:
            self._count(spec.event, "vetoed")
        return verdict

    async def _command(self, spec: HookSpec, fields: dict[str, Any], timeout: float) -> Verdict:
        payload = encode_payload(spec.event, self.agent, self.role, fields)
        proc = await asyncio.create_subprocess_exec(
            *spec.target,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout kills all it started
        )
        try:
            out, err = await asyncio.wait_for(_communicate(proc, payload), timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.stdin is not None:  # unsent payload: the exit is not seen while it waits
                proc.stdin.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5.0)
            raise
        return read_command(proc.returncode or 0, out, err, spec.name)

    async def _callable(self, spec: HookSpec, fields: dict[str, Any], timeout: float) -> Verdict:
        fn = self._load(spec.target[0])
        doc = {"event": spec.event, "agent": self.agent, "role": self.role, **fields}
        if inspect.iscoroutinefunction(fn):
            result = await asyncio.wait_for(fn(doc), timeout)
        else:  # in a thread, so a slow one holds neither the loop nor, past its deadline, us
            result = await asyncio.wait_for(asyncio.to_thread(fn, doc), timeout)
        return read_result(result, spec.name)


async def _communicate(proc: asyncio.subprocess.Process, payload: bytes) -> tuple[bytes, bytes]:
    """Feed the payload while reading capped output (a hook may print before it reads,
    or never read its stdin), then wait for the exit."""
    assert proc.stdin and proc.stdout and proc.stderr
    stdin = proc.stdin

    async def feed() -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.write(payload)
            await stdin.drain()
        with contextlib.suppress(OSError):
            stdin.close()

    _, out, err = await asyncio.gather(feed(), _read_capped(proc.stdout), _read_capped(proc.stderr))
    await proc.wait()
    return out, err


async def _read_capped(stream: asyncio.StreamReader) -> bytes:
    """Up to MAX_OUTPUT bytes; the rest is read and dropped, so the hook never blocks."""
    kept = bytearray()
    while chunk := await stream.read(65536):
        kept += chunk[: MAX_OUTPUT - len(kept)]
    return bytes(kept)
