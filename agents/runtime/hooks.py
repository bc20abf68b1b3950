"""Hooks: named events of an agent's life and the user's code that runs at them (pure).

A hook is a command (argv, run without a shell, the event's JSON payload on stdin) or a
Python callable registered under the `amcp.hooks` entry-point group, configured per agent
(`amcp-agent --hook EVENT=COMMAND`, `--hook EVENT=python:NAME`, or a TOML `--hooks-file`).
A hook at a vetoing event (PRE_VETO) can stop what is about to happen, with a reason:

- a command vetoes by exiting 2 (its stderr, else stdout, is the reason) or by printing
  {"decision": "block", "reason": "..."} on stdout with exit 0, as Claude Code's hooks do;
  exit 0 otherwise allows; any other exit, a timeout or a crash is a failure: logged and
  counted, and the agent goes on as if the hook had allowed (a broken hook never stops
  the cluster, a deliberate veto does);
- a callable vetoes by returning False, a reason string, or that same dict; None, True
  or {"decision": "allow"} allow; raising is a failure.

This module holds the events, the configuration and its parsing, the payload's encoding
and the reading of a hook's answer; agents.runtime.hookrunner runs them.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from amcp.errors import ConfigError

__all__ = [
    "DEFAULT_TIMEOUT",
    "EVENTS",
    "HOOK_GROUP",
    "MAX_REASON",
    "PRE_VETO",
    "HookConfig",
    "HookSpec",
    "Verdict",
    "encode_payload",
    "merge",
    "parse_hook",
    "parse_hooks_file",
    "read_command",
    "read_result",
]

HOOK_GROUP = "amcp.hooks"
DEFAULT_TIMEOUT = 5.0
MAX_REASON = 1000  # characters of a veto's reason kept (it goes to the audit log)

EVENTS: tuple[str, ...] = (
    "pre_agent_spawn",
    "post_agent_complete",
    "pre_task",
    "post_task",
    "pre_step",
    "post_step",
    "pre_crdt_sync",
    "post_crdt_sync",
    "pre_vote",
    "post_vote",
    "post_security_check",
    "pre_tool_call",
    "post_tool_call",
)
# Where a veto has a meaning the agent can honour. A CRDT merge or a ballot is not
# vetoed: refusing a peer's deltas would break convergence, and a voter's choice is its
# scorer's; their pre-hooks observe, as every post-hook does.
PRE_VETO: frozenset[str] = frozenset({"pre_agent_spawn", "pre_task", "pre_step", "pre_tool_call"})


@dataclass(frozen=True, slots=True)
class HookSpec:
    """One hook: the event it runs at, a command's argv or an entry point's name, and its
    own timeout (None: the config's)."""

    event: str
    kind: Literal["command", "python"]
    target: tuple[str, ...]  # argv, or (entry point name,)
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ConfigError(f"unknown hook event {self.event!r}: one of {', '.join(EVENTS)}")
        if not self.target or not all(self.target):
            raise ConfigError(f"hook for {self.event} has no command")
        if self.timeout is not None and not 0 < self.timeout <= 3600:
            raise ConfigError(f"hook timeout must be in (0, 3600] seconds, not {self.timeout}")

    @property
    def name(self) -> str:
        """How logs and vetoes name it."""
        return f"python:{self.target[0]}" if self.kind == "python" else shlex.join(self.target)


@dataclass(frozen=True, slots=True)
class HookConfig:
    """An agent's hooks, in the order they run at each event, and the default timeout."""

    hooks: tuple[HookSpec, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    by_event: dict[str, tuple[HookSpec, ...]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.timeout <= 3600:
            raise ConfigError(f"hook timeout must be in (0, 3600] seconds, not {self.timeout}")
        grouped: dict[str, list[HookSpec]] = {}
        for spec in self.hooks:
            grouped.setdefault(spec.event, []).append(spec)
        object.__setattr__(self, "by_event", {e: tuple(s) for e, s in grouped.items()})

    def at(self, event: str) -> tuple[HookSpec, ...]:
        return self.by_event.get(event, ())

    def timeout_of(self, spec: HookSpec) -> float:
        return spec.timeout if spec.timeout is not None else self.timeout


def parse_hook(text: str) -> HookSpec:
    """`EVENT=COMMAND` (split as a POSIX shell would, but never run by one) or
    `EVENT=python:NAME`; ConfigError with a one-line reason otherwise."""
    event, sep, command = text.partition("=")
    event = event.strip()
    if not sep or not command.strip():
        raise ConfigError(f"expected EVENT=COMMAND, not {text!r}")
    return _spec(event, command, None)


def _spec(event: str, command: Any, timeout: Any) -> HookSpec:
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise ConfigError(f"hook timeout for {event} must be a number of seconds")
    t = None if timeout is None else float(timeout)
    if isinstance(command, str):
        if command.startswith("python:"):
            return HookSpec(event, "python", (command.removeprefix("python:").strip(),), t)
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ConfigError(f"hook for {event}: cannot split {command!r}: {exc}") from None
        return HookSpec(event, "command", tuple(argv), t)
    if isinstance(command, list) and all(isinstance(a, str) for a in command):
        return HookSpec(event, "command", tuple(command), t)
    raise ConfigError(f"hook for {event}: command must be a string or a list of strings")


def parse_hooks_file(text: str, source: str = "hooks file") -> HookConfig:
    """A TOML hooks file:

    timeout = 5                      # seconds, every hook's default
    [[hooks.pre_step]]
    command = ["./policy", "--step"] # or a string, split as a shell would
    timeout = 2
    [[hooks.post_task]]
    python = "notify"                # an `amcp.hooks` entry point
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not TOML: {exc}") from None
    unknown = set(doc) - {"timeout", "hooks"}
    if unknown:
        raise ConfigError(f"{source}: unknown keys {', '.join(sorted(unknown))}")
    timeout = doc.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ConfigError(f"{source}: timeout must be a number of seconds")
    hooks = doc.get("hooks", {})
    if not isinstance(hooks, dict):
        raise ConfigError(f"{source}: [hooks] must be a table of events")
    specs = []
    for event, entries in hooks.items():
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: hooks.{event} must be an array of tables ([[...]])")
        for entry in entries:
            specs.append(_entry(event, entry, source))
    return HookConfig(tuple(specs), float(timeout))


def _entry(event: str, entry: Any, source: str) -> HookSpec:
    if not isinstance(entry, dict) or set(entry) - {"command", "python", "timeout"}:
        raise ConfigError(f"{source}: a hooks.{event} entry takes command or python, and timeout")
    if ("command" in entry) == ("python" in entry):
        raise ConfigError(f"{source}: a hooks.{event} entry needs one of command and python")
    if "python" in entry:
        name = entry["python"]
        if not isinstance(name, str):
            raise ConfigError(f"{source}: hooks.{event} python must be an entry point name")
        return _spec(event, "python:" + name, entry.get("timeout"))
    return _spec(event, entry["command"], entry.get("timeout"))


def merge(configs: Iterable[HookConfig], timeout: float | None = None) -> HookConfig:
    """Several configs' hooks in order (a file's, then the command line's); the default
    timeout is `timeout`, else the first config's."""
    configs = list(configs)
    base = timeout if timeout is not None else (configs[0].timeout if configs else DEFAULT_TIMEOUT)
    return HookConfig(tuple(s for c in configs for s in c.hooks), base)


def encode_payload(event: str, agent: str, role: str, fields: Mapping[str, Any]) -> bytes:
    """The JSON a command reads on stdin: event, agent, role and the event's fields
    (anything JSON cannot say is given as its text)."""
    doc = {"event": event, "agent": agent, "role": role, **fields}
    return json.dumps(doc, default=str, ensure_ascii=False, sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class Verdict:
    """A hook's answer: allowed or vetoed with a reason; `failure` says why a hook could
    not answer (it then allows)."""

    allowed: bool = True
    reason: str = ""
    hook: str = ""
    failure: str = ""

    @classmethod
    def veto(cls, reason: str, hook: str = "") -> Verdict:
        return cls(False, (reason.strip() or "vetoed by a hook")[:MAX_REASON], hook)


def _from_decision(doc: Mapping[str, Any], hook: str) -> Verdict | None:
    decision = doc.get("decision")
    if decision == "block":
        reason = doc.get("reason")
        return Verdict.veto(reason if isinstance(reason, str) else "", hook)
    if decision in (None, "allow", "approve"):
        return None
    return Verdict(hook=hook, failure=f"unknown decision {decision!r}")


def read_command(exit_code: int, stdout: bytes, stderr: bytes, hook: str = "") -> Verdict:
    """A command's answer from its exit code and output (see the module's rules)."""
    out = stdout.decode(errors="replace").strip()
    err = stderr.decode(errors="replace").strip()
    if exit_code == 2:
        reason = err or out
        if out.startswith("{"):
            try:
                doc = json.loads(out)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("reason"), str):
                reason = doc["reason"]
        return Verdict.veto(reason, hook)
    if exit_code != 0:
        tail = (err or out).splitlines()[-1:] or [""]
        return Verdict(hook=hook, failure=f"exited {exit_code}: {tail[0][:200]}".rstrip(": "))
    if out.startswith("{"):
        try:
            doc = json.loads(out)
        except ValueError:
            return Verdict(hook=hook)  # plain output that happens to start with {
        if isinstance(doc, dict):
            return _from_decision(doc, hook) or Verdict(hook=hook)
    return Verdict(hook=hook)


def read_result(result: Any, hook: str = "") -> Verdict:
    """A callable's answer: None/True allow, False or a reason string veto, or the
    decision dict a command would print."""
    if result is None or result is True:
        return Verdict(hook=hook)
    if result is False:
        return Verdict.veto("", hook)
    if isinstance(result, str):
        return Verdict.veto(result, hook)
    if isinstance(result, Mapping):
        return _from_decision(result, hook) or Verdict(hook=hook)
    return Verdict(hook=hook, failure=f"returned {type(result).__name__}, not a decision")
