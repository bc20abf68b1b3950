"""The agent runtime: one agent's life on the bus.

start: connect-side checks (no other live agent with this id), open its CRDT replica, join
the membership, serve its tools on its own subject, its role's queue group and the cluster
query group, heartbeat, report running. stop (SIGTERM, Ctrl-C): report draining, stop
taking work, let its extensions stop, leave the membership, finish in-flight calls, report
stopped. A crash leaves it a member, marked dead by the others.

The calls it serves (its pool, queue-group claims, replies) are agents.runtime.serving's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from agents.runtime.admin import admin_tools
from agents.runtime.audit import AuditEvent, AuditLog
from agents.runtime.catalog import catalog_tool
from agents.runtime.config import AgentConfig
from agents.runtime.discovery import Discovery, MemberStatus
from agents.runtime.errors import AgentError, DuplicateAgent
from agents.runtime.extension import Extension
from agents.runtime.hookrunner import HookRunner
from agents.runtime.lifecycle import Lifecycle, LifecycleState
from agents.runtime.liveness import LivenessDetector
from agents.runtime.membership import MemberRecord, Membership, Store
from agents.runtime.memory import TRIM_INTERVAL, can_release, release_free_memory
from agents.runtime.metrics import AgentMetrics
from agents.runtime.serving import CallServer
from agents.runtime.subjects import AgentSubjects, call_request
from agents.runtime.tools import Tool, ToolRegistry
from agents.runtime.trust import identity_status, warn_if_unchecked
from amcp import Bus, Message, Subscription, __version__
from amcp.errors import AmcpError, NoResponders, RequestTimeout
from amcp.netstatus import network_status
from amcp.tracing import Span
from netopt.bulkhead import Bulkhead

__all__ = ["Agent", "StoreFactory"]

log = logging.getLogger("agents.runtime.agent")
StoreFactory = Callable[[Bus, str, Path | None], Awaitable[Store]]


async def open_context_store(bus: Bus, replica_id: str, data_dir: Path | None) -> Store:
    """crdt's ContextStore: durable under `data_dir/context`, with the agent's id as its
    replica id, when there is a data dir."""
    from crdt.store import ContextStore  # the replicator lives in crdt; imported on use

    if data_dir is None:  # in memory: a fresh replica id each run (counters must not clash)
        return await ContextStore.open(bus)
    return await ContextStore.open(bus, replica_id=replica_id, data_dir=data_dir / "context")


class Agent:
    """One running agent. Build it, add tools and extensions, `start`, `run`, `stop`."""

    def __init__(
        self,
        bus: Bus,
        config: AgentConfig,
        *,
        extensions: list[Extension] | None = None,
        store_factory: StoreFactory = open_context_store,
    ) -> None:
        self.bus = bus
        self.config = config
        self.id = config.agent_id
        self.role = config.role
        self.subjects = AgentSubjects(bus.subjects)
        self.lifecycle = Lifecycle()
        self.tools = ToolRegistry()
        self.extensions: list[Extension] = list(extensions or [])
        self.pool = Bulkhead(config.pool_size, config.queue_size, name=f"agent {self.id}")
        self.detector = LivenessDetector(config.heartbeat)
        self.discovery = Discovery(self.detector)
        self.metrics = AgentMetrics(self.id, self.role, __version__)
        self.audit = AuditLog(bus, self.id, self.role, config.data_dir)
        self.hooks = HookRunner(config.hooks, self.id, self.role, audit=self.record)
        # outcomes of pooled calls (tasks); every call is in the metrics by tool
        self.calls: dict[str, int] = {"ok": 0, "failed": 0, "refused": 0, "invalid": 0}
        self.store: Store | None = None
        self.membership: Membership | None = None
        self.failure: BaseException | None = None
        self._server = CallServer(
            self,
            bus=bus,
            tools=self.tools,
            pool=self.pool,
            lifecycle=self.lifecycle,
            audit=self.audit,
            metrics=self.metrics,
            calls=self.calls,
            hooks=self.hooks,
        )
        self._store_factory = store_factory
        self._record: MemberRecord | None = None
        self._joined = False
        self._subs: list[Subscription] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._failed = asyncio.Event()
        self._liveness_counts: dict[str, int] = {}
        for t in admin_tools(self, self.tools, self.extensions):
            self.tools.add(t)
        for capability in config.capabilities:
            catalogued = catalog_tool(capability)
            if catalogued is not None and self.tools.get(catalogued.name) is None:
                self.tools.add(catalogued)

    # -- what extensions use ----------------------------------------------------------

    @property
    def state(self) -> LifecycleState:
        return self.lifecycle.state

    def add_tool(self, t: Tool) -> None:
        """Serve one more tool; only before `start`."""
        if self.state is not LifecycleState.STARTING:
            raise AgentError("tools are added before the agent starts")
        self.tools.add(t)

    def install(self, extension: Extension) -> None:
        self.extensions.append(extension)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run background work; if it dies with an error, the whole agent fails (and a
        supervisor restarts it) rather than limping on without it."""
        task = asyncio.create_task(coro, name=f"{self.id}:{name}")
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    async def subscribe(
        self, subject: str, handler: Callable[[Message], Any], *, queue: str | None = None
    ) -> Subscription:
        """A subscription that ends when the agent starts draining."""
        sub = await self.bus.subscribe(subject, handler, queue=queue)
        self._subs.append(sub)
        return sub

    async def record(
        self,
        event: str,
        *,
        then: Callable[[], Awaitable[Any]] | None = None,
        lazy: bool = False,
        span_attributes: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Append to the audit log (vote, decision, adaptation, ...). `then` publishes the
        consequence (a reply, a vote) right behind the entry, so the log shows the entry
        first; `record` returns once the entry is queued, `then` runs soon after. A `lazy`
        entry (one per ballot) may linger to share a stream frame with others. In a trace,
        the entry is a span with `span_attributes`."""
        await self.audit.record(
            event, then=then, lazy=lazy, span_attributes=span_attributes, **fields
        )

    async def flush_audit(self) -> None:
        """Return once every entry recorded so far is on the connection to the cluster log:
        what the agent sends next reaches the stream after it (cause before effect)."""
        await self.audit.flush()

    def span(self, name: str, **attributes: Any) -> AbstractAsyncContextManager[Span | None]:
        """Time a block as a span of the current trace, recorded in the audit log; nothing
        (None) outside a trace."""
        return self.audit.span(name, **attributes)

    def members(self) -> list[MemberStatus]:
        """Every member with its liveness, as this agent sees it."""
        return self.discovery.view(self.membership.records() if self.membership else {})

    def has_tool(self, name: str) -> bool:
        return self.tools.get(name) is not None

    async def execute(self, tool: str, raw: Any, *, caller: str, call_id: str) -> Any:
        """Run one of this agent's tools once inside its pool, no reply (CallServer.execute)."""
        return await self._server.execute(tool, raw, caller=caller, call_id=call_id)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Join and serve. If it cannot, it raises: before joining it leaves nothing behind;
        after joining it reports failed and stays a member, as a crash would."""
        try:
            await self._start()
        except BaseException as exc:
            if not self._joined:
                await self._close()
            else:
                await self.fail(exc)
            raise

    async def _start(self) -> None:
        await self._refuse_duplicate()
        data_dir = self.config.data_dir
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
        self.store = await self._store_factory(self.bus, self.id, data_dir)
        self.membership = Membership(
            self.store, identity=self.bus.identity, verifier=self.bus.verifier
        )
        warn_if_unchecked(log, self.id, self.bus.verifier)
        await self.audit.open()
        await self._gate_start()
        for extension in self.extensions:
            await extension.prepare()
            for t in extension.tools():
                self.tools.add(t)
        if self.config.metrics_port is not None:
            self.metrics.serve(self.config.metrics_port, self.config.metrics_host)
        self.metrics.watch(
            self.pool,
            lambda: self.bus.rejections,
            lambda: self._liveness_counts,
            lambda: self.audit.recorded,
            bus=self.bus,
            store=self.store,
        )
        self._record = MemberRecord(
            id=self.id,
            role=self.role,
            version=__version__,
            state=LifecycleState.STARTING.value,
            capabilities=tuple(self.config.capabilities),
            tools=tuple(self.tools.names()),
            voter=self.config.voter,
            host=socket.gethostname(),
            pid=os.getpid(),
            joined_ms=int(time.time() * 1000),
            heartbeat=self.config.heartbeat,
            metrics_port=self.metrics.port,
            extra=dict(self.config.extra),
        )
        await self.membership.join(self._record)
        self._joined = True
        await self.record(
            AuditEvent.STARTED,
            version=__version__,
            pid=os.getpid(),
            restarts=self.config.restarts,
            capabilities=list(self.config.capabilities),
            tools=self.tools.names(),
        )
        await self.audit.flush()
        self.membership.watch(self._on_members_changed)
        self.discovery.sync(self.membership.records())
        await self.bus.subscribe(self.subjects.heartbeats, self._on_heartbeat)
        for extension in self.extensions:
            await extension.start(self)
        self._set_state(LifecycleState.RUNNING)
        await self._server.open_claims()
        # Calls come in only now: nothing is refused for arriving while the agent starts.
        # A queue group's calls are claimed (at most once across the group); a call to
        # this agent's own subject needs no claim: its replay window is the only one.
        on_call = self._server.on_call
        on_group_call = functools.partial(on_call, group=True)
        await self.subscribe(self.subjects.call(self.id), on_call)
        await self.subscribe(self.subjects.role(self.role), on_group_call, queue=self.role)
        await self.subscribe(self.subjects.any, on_group_call, queue="any")
        await self.membership.update(self._record.with_state(self.state.value))
        self.spawn(self._heartbeat_loop(), "heartbeat")
        if can_release():
            self.spawn(self._release_memory_loop(), "malloc-trim")
        await self.bus.flush()
        log.info(
            "agent %s (%s) running, tools: %s", self.id, self.role, ", ".join(self.tools.names())
        )

    async def run(self, stop: asyncio.Event) -> int:
        """Serve until `stop` is set (graceful: exit code 0) or the agent fails (1)."""
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait([stopping, failing], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stopping, failing):
                waiter.cancel()
        if self.failure is not None:
            await self.fail(self.failure)
            return 1
        await self.stop()
        return 0

    async def stop(self) -> None:
        """Graceful stop: draining, leave, finish in-flight work, stopped."""
        if self.lifecycle.final or self.state is LifecycleState.DRAINING:
            return
        self._set_state(LifecycleState.DRAINING)
        log.info("agent %s draining: %d calls in flight", self.id, len(self._server.inflight))
        await self._stop_intake()
        await self._publish_heartbeat()
        if self._joined:
            await self._leave()
        await self._server.finish(self.config.drain_timeout)
        await self._stop_background()
        self._set_state(LifecycleState.STOPPED)
        await self._publish_heartbeat()
        await self.record(AuditEvent.STOPPED, calls=dict(self.calls))
        self.hooks.notify("post_agent_complete", state="stopped", calls=dict(self.calls))
        await self._close()
        log.info("agent %s stopped", self.id)

    async def fail(self, error: BaseException) -> None:
        """Fatal error: report failed, stay a member (a supervisor may bring it back)."""
        if self.lifecycle.final:
            return
        self._set_state(LifecycleState.FAILED)
        log.error("agent %s failed: %s", self.id, error)
        with contextlib.suppress(Exception):
            await self._publish_heartbeat()
            if self._joined and self.membership is not None and self._record is not None:
                await self.membership.update(self._record.with_state(self.state.value))
            await self.record(AuditEvent.FAILED, error=f"{type(error).__name__}: {error}")
            self.hooks.notify("post_agent_complete", state="failed", error=str(error))
        await self._stop_intake()
        self._server.cancel()
        await self._stop_background()
        await self._close()

    # -- heartbeats and membership ------------------------------------------------------

    def _heartbeat_body(self) -> dict[str, Any]:
        pool = self.pool
        return {
            "id": self.id,
            "role": self.role,
            "state": self.state.value,
            "ts": int(time.time() * 1000),
            "interval": self.config.heartbeat,
            "load": {
                "running": pool.running,
                "waiting": pool.waiting,
                "max_running": pool.max_concurrent,
                "max_waiting": pool.max_waiting,
            },
            "calls": dict(self.calls),
            "rejections": self.bus.rejections,
            "handler_errors": self.bus.handler_errors,
            "audit": {
                "recorded": self.audit.recorded,
                "stream_failures": self.audit.stream_failures,
            },
            "extensions": {e.name: s for e in self.extensions if (s := e.status())},
            "hooks": self.hooks.status(),
            "identity": identity_status(
                self.bus.identity,
                self.bus.verifier,
                self.membership.refused if self.membership else {},
            ),
            "network": network_status(self.bus),  # batching per family, RTO per family
        }

    async def _publish_heartbeat(self) -> None:
        with contextlib.suppress(AmcpError):
            await self.bus.publish(
                self.subjects.heartbeat(self.id), self._heartbeat_body(), kind="hb"
            )
            self.metrics.heartbeats.inc()

    async def _heartbeat_loop(self) -> None:
        while True:
            await self._publish_heartbeat()
            if self.membership is not None:
                records = self.membership.records()
                # a roster reload can make a record count that did not (an agent enrolled
                # while this one ran) with no change of the member map to say so
                self.discovery.sync(records)
                self._liveness_counts = self.discovery.liveness_counts(records)
            await asyncio.sleep(self.config.heartbeat)

    async def _release_memory_loop(self) -> None:
        while True:  # in a thread: the trim holds the allocator's lock, not the event loop
            await asyncio.sleep(TRIM_INTERVAL)
            await asyncio.to_thread(release_free_memory)

    def _on_heartbeat(self, msg: Message) -> None:
        agent_id = msg.subject.rpartition(".")[2]
        body = msg.body
        if agent_id != msg.sender or not isinstance(body, dict) or body.get("id") != agent_id:
            log.debug("ignored a heartbeat on %s signed by %s", msg.subject, msg.sender)
            return
        self.discovery.heartbeat(agent_id, body)

    def _on_members_changed(self) -> None:
        if self.membership is None:
            return
        self.discovery.sync(self.membership.records())
        # Deleted, or replaced by a record this agent did not write (an insider's forgery,
        # which the roster check leaves out): either way the roll would shrink silently.
        if (
            self.state is LifecycleState.RUNNING
            and self._record
            and self.membership.displaced(self.id)
        ):
            log.warning(
                "agent %s: its member record was removed or replaced; writing it again", self.id
            )
            self.spawn(self.membership.join(self._record.with_state(self.state.value)), "rejoin")

    async def _leave(self) -> None:
        assert self.membership is not None
        try:
            await self.membership.leave(self.id)
        except AmcpError as exc:  # e.g. a write concern not met: the others may not know yet
            log.warning("agent %s left, but the leave may not be replicated: %s", self.id, exc)

    async def _refuse_duplicate(self) -> None:
        """Ask this id's call subject: anyone answering means the id is taken."""
        try:
            await self.bus.request(
                self.subjects.call(self.id), call_request("describe", {}), timeout=1.0
            )
        except (NoResponders, RequestTimeout):
            return
        raise DuplicateAgent(f"an agent with id {self.id} is already running")

    # -- hooks ----------------------------------------------------------------------------

    async def _gate_start(self) -> None:
        """pre_agent_spawn may refuse the start; the observing events get their sources."""
        hooks = self.hooks
        verdict = await hooks.gate(
            "pre_agent_spawn",
            capabilities=list(self.config.capabilities),
            pid=os.getpid(),
            restarts=self.config.restarts,
        )
        if not verdict.allowed:
            await self.audit.flush()
            raise AgentError(
                f"pre_agent_spawn hook {verdict.hook} refused the start: {verdict.reason}"
            )
        if hooks.wants("post_security_check"):
            before = self.bus.on_reject

            def rejected(reason: str, subject: str, detail: str) -> None:
                if before is not None:
                    before(reason, subject, detail)
                hooks.notify("post_security_check", reason=reason, subject=subject, detail=detail)

            self.bus.on_reject = rejected
        if hooks.wants("pre_crdt_sync") or hooks.wants("post_crdt_sync"):
            # crdt knows no hooks: it calls back with ("pre" | "post", what it merges)
            self.store.on_sync = self._crdt_sync  # type: ignore[union-attr]

    def _crdt_sync(self, phase: str, info: dict[str, Any]) -> None:
        self.hooks.notify(f"{phase}_crdt_sync", **info)

    # -- internals --------------------------------------------------------------------

    def _set_state(self, state: LifecycleState) -> None:
        if state is not self.lifecycle.state:
            self.lifecycle.move(state)
        self.metrics.state.state(state.value)

    async def _stop_intake(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        for extension in reversed(self.extensions):
            try:
                await extension.stop()
            except Exception:
                log.exception("extension %s of %s failed to stop", extension.name, self.id)

    async def _stop_background(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._background if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        if self.failure is None and not self.lifecycle.final:
            self.failure = task.exception()
            self._failed.set()

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            await self.hooks.close()  # post_agent_complete: each hook has its deadline
        with contextlib.suppress(Exception):
            await self.audit.close()
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.close()
        self.metrics.close()
