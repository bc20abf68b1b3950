"""Agents as child processes: start `amcp-agent`, stop it gracefully, or kill it.

What `amcp demo`, the benchmarks and the chaos tests use to run real agents, each in its
own process with its own log file, and to make sure none is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["AgentProcess"]


class AgentProcess:
    """One `amcp-agent` child. Use as a context manager: it is killed on exit if running."""

    def __init__(
        self,
        role: str,
        agent_id: str,
        *,
        nats: str,
        keyring: str | os.PathLike[str],
        cluster: str = "default",
        data_dir: str | os.PathLike[str] | None = None,
        identity: str | os.PathLike[str] | None = None,
        roster: str | os.PathLike[str] | None = None,
        capabilities: Iterable[str] = (),
        heartbeat: float | None = None,
        supervise: bool = False,
        args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.role = role
        self.agent_id = agent_id
        argv = [
            "--role",
            role,
            "--id",
            agent_id,
            "--nats",
            nats,
            "--keyring",
            str(keyring),
            "--cluster",
            cluster,
        ]
        if data_dir is not None:
            argv += ["--data-dir", str(data_dir)]
        if identity is not None:  # its signing key, and the roster it checks others' against
            argv += ["--identity", str(identity)]
        if roster is not None:
            argv += ["--roster", str(roster)]
        caps = list(capabilities)
        if caps:
            argv += ["--capability", *caps]
        if heartbeat is not None:
            argv += ["--heartbeat", str(heartbeat)]
        if supervise:
            argv.append("--supervise")
        self.argv = [sys.executable, "-m", "agents.cli.agent", *argv, *args]
        self.env = dict(os.environ if env is None else env)
        self._tmp = None if log_dir else tempfile.TemporaryDirectory(prefix="amcp-agent-")
        self.log_path = Path(log_dir or self._tmp.name) / f"{agent_id}.log"  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a group of its own: `close` ends a supervisor and child
            )
        return self

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        """The exit status; TimeoutExpired if it is still running after `timeout`."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM (the agent drains and leaves), then the exit status; SIGKILL past
        `timeout`, which then shows as -9."""
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Kill whatever is left of its process group (a supervisor's child included)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
