"""Supervision: run a command, restart it when it crashes, give up when the budget is spent.

`amcp-agent --supervise ...` and `amcp supervise -- COMMAND...` both run this loop. A clean
exit (0) ends supervision; so does exit 2 (bad configuration: restarting cannot help).
Any other exit, a signal included, is a crash: restart after an exponential backoff,
unless the restart budget of the RestartPolicy is spent, in which case say so and exit 1.
SIGTERM or Ctrl-C to the supervisor is passed on to the child, which drains and leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence

from agents.process.restarts import RestartPolicy, RestartTracker

__all__ = [
    "RESTARTS_ENV",
    "Supervisor",
    "describe_exit",
]

log = logging.getLogger("agents.process.supervisor")
RESTARTS_ENV = "AMCP_RESTARTS"  # tells the child how many times it was restarted


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Keeps one child process running within a restart budget."""

    def __init__(
        self,
        command: Sequence[str],
        policy: RestartPolicy | None = None,
        *,
        name: str = "child",
        stop_timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not command:
            raise ValueError("nothing to supervise: the command is empty")
        self.command = list(command)
        self.tracker = RestartTracker(policy)
        self.name = name
        self.stop_timeout = stop_timeout
        self.clock = clock
        self.pid: int | None = None

    async def run(self, stop: asyncio.Event) -> int:
        """Supervise until a clean exit (0), `stop` (0 once the child stopped), or giving up
        (1; 2 if the child reported bad configuration)."""
        while True:
            env = dict(os.environ)
            env[RESTARTS_ENV] = str(self.tracker.total_restarts)
            proc = await asyncio.create_subprocess_exec(*self.command, env=env)
            self.pid = proc.pid
            log.info("started %s (pid %d)", self.name, proc.pid)
            code = await self._wait(proc, stop)
            if stop.is_set():
                log.info("%s stopped (%s)", self.name, describe_exit(code))
                return 0
            decision = self.tracker.on_exit(code, self.clock())
            if not decision.restart:
                if code == 0:
                    log.info("%s exited cleanly; supervision ends", self.name)
                    return 0
                log.error(
                    "giving up on %s: %s; last %s",
                    self.name,
                    decision.reason,
                    describe_exit(code),
                )
                return 2 if code == 2 else 1
            log.warning(
                "%s crashed (%s); restart %d of at most %d within %gs, in %.2fs",
                self.name,
                describe_exit(code),
                decision.attempt,
                self.tracker.policy.max_restarts,
                self.tracker.policy.window,
                decision.delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), decision.delay)
            if stop.is_set():
                return 0

    async def _wait(self, proc: asyncio.subprocess.Process, stop: asyncio.Event) -> int:
        """The child's exit status; on `stop`, SIGTERM it and wait (SIGKILL after a while)."""
        exited = asyncio.ensure_future(proc.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not exited.done():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), self.stop_timeout)
            except TimeoutError:
                log.error("%s did not stop in %gs; killing it", self.name, self.stop_timeout)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        return await exited
