"""The task loop's records on the wire: a task, one step given to S1, and the cycle result.

A task is a description plus, optionally, its steps (each a command or, for an external
CLI, a prompt); with no steps the description itself is the one step. The executor says
how S1 runs a step: `shell` (a command run by /bin/sh), `python` (a callable registered
under the `amcp.executors` entry-point group) or `cli` (an argument template such as
["claude", "-p", "{text}"], run without a shell).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from agents.vsm.s4.analysis import Complexity, TaskAnalysis

__all__ = [
    "MAX_OUTPUT",
    "CycleResult",
    "ExecutorKind",
    "StepIn",
    "StepOut",
    "TaskSpec",
    "Urgency",
]

ExecutorKind = Literal["shell", "python", "cli"]
Urgency = Literal["low", "normal", "high", "critical"]
MAX_OUTPUT = 256 * 1024  # per stream, so a reply with both stays well inside a frame
_ID = r"^[A-Za-z0-9_-]{1,64}$"


class _ExecutorFields(BaseModel):
    executor: ExecutorKind = "shell"
    entry_point: str | None = Field(
        None, max_length=128, description="python: the name in the amcp.executors group"
    )
    template: list[str] | None = Field(
        None,
        max_length=64,
        description="cli: argv template; {text}, {prompt}, {description}, {task_id}, {step}, {cwd}",
    )
    cwd: str | None = Field(None, max_length=4096, description="working directory")
    timeout: float = Field(60.0, gt=0, le=86_400, description="seconds per step")
    max_output: int = Field(
        64 * 1024, ge=0, le=MAX_OUTPUT, description="bytes kept of stdout and of stderr"
    )

    @model_validator(mode="after")
    def _executor_needs(self) -> _ExecutorFields:
        if self.executor == "python" and not self.entry_point:
            raise ValueError("the python executor needs entry_point")
        if self.executor == "cli" and not self.template:
            raise ValueError("the cli executor needs a template")
        return self

    # -- the prompt a `cli` executor gets in {prompt} (agents.vsm.prompts) ----------------
    prompt_template: str | None = Field(
        None, max_length=64 * 1024, description="TOML prompt template (default: the role's)"
    )
    context_budget: int = Field(
        100_000, ge=1, le=10_000_000, description="tokens a rendered prompt may take"
    )
    pinned: list[str] = Field(
        default_factory=list, max_length=32, description="facts kept in every prompt"
    )
    token_counter: str = Field(
        "bytes",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="an amcp.token_counters entry point; bytes: ~4 bytes a token",
    )
    summariser: list[str] | None = Field(
        None, max_length=64, description="argv template ({text}) that summarises compacted context"
    )

    def uses_prompt(self) -> bool:
        """Whether a step renders a prompt (and keeps the task's context): a cli template
        that asks for {prompt}."""
        return self.executor == "cli" and any("{prompt}" in a for a in self.template or ())


class TaskSpec(_ExecutorFields):
    """What `amcp task` submits to S3."""

    id: str = Field("", pattern=r"^$|" + _ID, description="empty: S3 assigns one")
    description: str = Field(min_length=1, max_length=8192)
    steps: list[str] = Field(default_factory=list, max_length=32)
    complexity: Complexity | None = Field(None, description="overrides S4's classification")
    check: str | None = Field(None, max_length=8192, description="S3* audit command")
    resource: str | None = Field(
        None, max_length=1024, description="what the task changes (a path under cwd or a name)"
    )
    urgency: Urgency = "normal"

    @model_validator(mode="after")
    def _steps_nonempty(self) -> TaskSpec:
        if any(not s.strip() for s in self.steps):
            raise ValueError("a step cannot be empty")
        return self

    def step_texts(self) -> list[str]:
        return list(self.steps) or [self.description]

    def with_id(self) -> TaskSpec:
        """This task, with a fresh id if it has none yet."""
        return self if self.id else self.model_copy(update={"id": f"t-{uuid.uuid4().hex[:12]}"})

    def fingerprint(self) -> str:
        """The same work, whatever its id: how S2 recognises a task retried in a loop."""
        doc = [self.executor, self.entry_point, self.template, self.cwd, self.step_texts()]
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]


class StepIn(_ExecutorFields):
    """One step as S3 hands it to an S1 agent."""

    task_id: str = Field(pattern=_ID)
    step: int = Field(ge=-1, description="0-based; -1 is S3*'s check command")
    iteration: int = Field(1, ge=1)
    text: str = Field(min_length=1, max_length=8192)
    description: str = Field("", max_length=8192)
    resource: str | None = Field(None, max_length=1024)


class StepOut(BaseModel):
    """What an S1 agent made of a step."""

    task_id: str
    step: int
    agent: str
    ok: bool
    exit_code: int | None = None
    timed_out: bool = False
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    error: str | None = Field(None, description="why it could not run at all")
    ms: float = 0.0
    digest: str | None = Field(None, description="sha256 of the resource file after the step")
    context: str | None = Field(None, description="the prompt's context: size, compaction")


class CycleResult(BaseModel):
    """The task loop's answer: what `amcp task` prints."""

    task_id: str
    success: bool
    summary: str
    complexity: Complexity | None = None
    critical: bool = False
    iterations: int = 0
    agents: list[str] = Field(default_factory=list, description="every agent invoked")
    path: list[str] = Field(default_factory=list, description="what happened, in order")
    analysis: TaskAnalysis | None = None
    vote: dict[str, Any] | None = None
    steps: list[StepOut] = Field(default_factory=list)
    audit: dict[str, Any] = Field(default_factory=dict)
    conflicts: list[dict[str, Any]] = Field(default_factory=list)
    damping: list[dict[str, Any]] = Field(default_factory=list)
    adaptations: list[dict[str, Any]] = Field(default_factory=list)
    requeued: list[dict[str, Any]] = Field(default_factory=list)
    seconds: float = 0.0
