"""Prometheus metrics of one agent (prometheus-client), served on --metrics-port.

Counters are bumped by the runtime; gauges that mirror live state (pool, members by
liveness, bus rejections) are read when Prometheus scrapes, so they are never stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from agents.runtime.lifecycle import LifecycleState

__all__ = ["AgentMetrics"]


class _LiveCollector(Collector):
    """Reads bus rejections, members by liveness and audit entries at scrape time."""

    def __init__(
        self,
        rejections: Callable[[], Mapping[str, int]],
        liveness: Callable[[], Mapping[str, int]],
        audit_entries: Callable[[], int],
    ) -> None:
        self._rejections = rejections
        self._liveness = liveness
        self._audit_entries = audit_entries

    def collect(self) -> Iterator[Any]:
        yield CounterMetricFamily(
            "amcp_agent_audit_entries", "Audit entries recorded", value=self._audit_entries()
        )
        rejected = CounterMetricFamily(
            "amcp_bus_rejected_frames", "Inbound frames rejected by the bus", labels=["reason"]
        )
        for reason, count in sorted(self._rejections().items()):
            rejected.add_metric([reason], count)
        yield rejected
        members = GaugeMetricFamily(
            "amcp_agent_members",
            "Cluster members by liveness, as this agent sees them",
            labels=["liveness"],
        )
        for state, count in sorted(self._liveness().items()):
            members.add_metric([state], count)
        yield members


class AgentMetrics:
    """The metrics of one agent in a registry of its own."""

    def __init__(self, agent_id: str, role: str, version: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        Info("amcp_agent", "Who this agent is", registry=r).info(
            {"id": agent_id, "role": role, "version": version}
        )
        self.state = Enum(
            "amcp_agent_state",
            "Lifecycle state",
            states=[s.value for s in LifecycleState],
            registry=r,
        )
        self.calls = Counter(
            "amcp_agent_tool_calls",
            "Tool calls by tool and outcome",
            ["tool", "outcome"],
            registry=r,
        )
        self.call_seconds = Histogram(
            "amcp_agent_tool_call_seconds",
            "Tool run time, pool wait included",
            ["tool"],
            registry=r,
        )
        self.heartbeats = Counter("amcp_agent_heartbeats_sent", "Heartbeats sent", registry=r)
        self.pool_running = Gauge("amcp_agent_pool_running", "Calls holding a slot", registry=r)
        self.pool_waiting = Gauge("amcp_agent_pool_waiting", "Calls waiting", registry=r)
        self.port: int | None = None
        self._server: Any = None
        self._per_tool: dict[tuple[str, str], Any] = {}

    def call_done(self, tool: str, outcome: str, seconds: float) -> None:
        """Count one call (labelled children cached: this is on every call's path)."""
        children = self._per_tool.get((tool, outcome))
        if children is None:
            children = (self.calls.labels(tool, outcome), self.call_seconds.labels(tool))
            self._per_tool[(tool, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)

    def watch(
        self,
        pool: Any,
        rejections: Callable[[], Mapping[str, int]],
        liveness: Callable[[], Mapping[str, int]],
        audit_entries: Callable[[], int],
    ) -> None:
        """Mirror the pool, the bus rejections, the member liveness and the audit entries
        at scrape time (nothing to do per call)."""
        self.pool_running.set_function(lambda: pool.running)
        self.pool_waiting.set_function(lambda: pool.waiting)
        self.registry.register(_LiveCollector(rejections, liveness, audit_entries))

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics over HTTP (port 0: any free port); returns the port."""
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self._server.server_port)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
