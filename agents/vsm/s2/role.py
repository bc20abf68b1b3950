"""S2 coordination: S3 asks before each step starts (`claim`) and tells when it is done
(`release`); S2 detects oscillation and damps it (agents/vsm/s2/arbiter.py).

Claims go to the S2 leader (the live S2 agent with the lowest id), so one arbiter sees
every claim. Each first claim counts in `vsm.s2.checks`, each oscillation found in
`vsm.s2.oscillations`: their ratio is the oscillation rate. While the more_s2 adaptation
holds, S2 uses its strict thresholds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from agents.runtime.tools import CallContext, Example, Tool, tool
from agents.vsm.role import VsmRole
from agents.vsm.s2.arbiter import STRICT, ArbiterRuling, OscillationArbiter, S2Settings
from agents.vsm.viability import CHECKS, OSCILLATIONS

if TYPE_CHECKING:
    from agents.runtime.config import AgentConfig

__all__ = ["ArbiterRulingOut", "ClaimIn", "CoordinationRole", "ReleaseIn"]


class ClaimIn(BaseModel):
    holder: str = Field(min_length=1, max_length=256, description="task:step:iteration")
    fingerprint: str = Field(min_length=1, max_length=64)
    attempt: str = Field(min_length=1, max_length=256)
    resource: str | None = Field(None, max_length=4096)
    lease: float = Field(60.0, gt=0, le=86_400)
    first: bool = True


class ReleaseIn(BaseModel):
    holder: str = Field(min_length=1, max_length=256)
    resource: str | None = Field(None, max_length=4096)
    digest: str | None = Field(None, max_length=128)
    fingerprint: str | None = Field(None, max_length=64)
    ok: bool = False


CLAIM_EXAMPLES = [
    Example(
        {
            "holder": "t-42:0:1",
            "fingerprint": "9f2c4a1b0d3e5f67",
            "attempt": "t-42:0:1",
            "resource": "config/app.yaml",
        },
        {"decision": "grant", "reason": "config/app.yaml is free"},
        description="step 0 of task t-42, first iteration, changes config/app.yaml",
    )
]
RELEASE_EXAMPLES = [
    Example(
        {"holder": "t-42:0:1", "resource": "config/app.yaml", "ok": True},
        description="the step succeeded: free its resource",
    )
]


class ArbiterRulingOut(BaseModel):
    decision: str
    reason: str
    delay: float = 0.0
    oscillation: str | None = None


class CoordinationRole(VsmRole):
    role = "s2"

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        self.arbiter = OscillationArbiter()
        self.found: dict[str, int] = {}

    def _settings(self) -> S2Settings | None:
        """Strict thresholds while the more_s2 adaptation holds, else the defaults."""
        return STRICT if self.active("more_s2") else None

    def role_tools(self) -> Iterable[Tool]:
        role = self

        @tool(audited=False, examples=CLAIM_EXAMPLES)
        async def claim(args: ClaimIn, ctx: CallContext) -> ArbiterRulingOut:
            """May this step start now? grant, wait (serialised or backing off) or escalate."""
            ruling = role.arbiter.claim(
                holder=args.holder,
                fingerprint=args.fingerprint,
                attempt=args.attempt,
                resource=args.resource,
                lease=args.lease,
                now=time.monotonic(),
                settings=role._settings(),
            )
            if args.first:
                await role.count(CHECKS)
            await role.note(ruling, args.holder, args.resource)
            return ArbiterRulingOut(**ruling.to_wire())

        @tool(audited=False, examples=RELEASE_EXAMPLES)
        async def release(args: ReleaseIn, ctx: CallContext) -> ArbiterRulingOut:
            """The step is done: free its resource (flapping content is escalated); a
            success ends any retry loop of its work."""
            ruling = role.arbiter.release(
                holder=args.holder,
                resource=args.resource,
                digest=args.digest,
                fingerprint=args.fingerprint,
                ok=args.ok,
                now=time.monotonic(),
                settings=role._settings(),
            )
            await role.note(ruling, args.holder, args.resource)
            return ArbiterRulingOut(**ruling.to_wire())

        return [claim, release]

    async def note(self, ruling: ArbiterRuling, holder: str, resource: str | None) -> None:
        if ruling.oscillation is None:
            return
        self.found[ruling.oscillation] = self.found.get(ruling.oscillation, 0) + 1
        await self.count(OSCILLATIONS)
        await self.agent.record(
            "oscillation",
            kind=ruling.oscillation,
            holder=holder,
            resource=resource,
            damping=ruling.decision,
            reason=ruling.reason,
        )

    async def on_start(self) -> None:
        self.agent.spawn(self._expire_loop(), "s2-expire")

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.arbiter.expire(time.monotonic())

    def status(self) -> dict[str, object]:
        return {"oscillations": dict(self.found)}
