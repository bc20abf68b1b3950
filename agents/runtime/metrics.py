"""Prometheus metrics of one agent (prometheus-client), served on --metrics-port.

Counters are bumped by the runtime; gauges that mirror live state (pool, members by
liveness, bus rejections) are read when Prometheus scrapes, so they are never stale.
Bus traffic is labelled by subject family, never by raw subject (amcp.familycounts): the
messages sent and received and the batching policy in force are read from what the bus
counts anyway, at scrape time; request durations, decision latency and CRDT replication
lag are observed as they happen (one histogram child each, cached).
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
from amcp.bus import Bus
from amcp.errors import ConfigError

__all__ = ["AgentMetrics"]


class _LiveCollector(Collector):
    """Reads bus rejections and traffic, members by liveness and audit entries at scrape
    time."""

    def __init__(
        self,
        rejections: Callable[[], Mapping[str, int]],
        liveness: Callable[[], Mapping[str, int]],
        audit_entries: Callable[[], int],
        bus: Bus | None,
    ) -> None:
        self._rejections = rejections
        self._liveness = liveness
        self._audit_entries = audit_entries
        self._bus = bus

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
        if self._bus is not None:
            yield from _bus_traffic(self._bus)


def _bus_traffic(bus: Bus) -> Iterator[Any]:
    """Messages sent and received and the batching policy in force, per subject family."""
    for name, what, counts in (
        ("amcp_bus_sent_messages", "Messages published, by subject family", bus.sent.counts),
        ("amcp_bus_received_messages", "Messages delivered, by subject family", bus.received()),
    ):
        family = CounterMetricFamily(name, what, labels=["family"])
        for label, count in sorted(counts.items()):
            family.add_metric([label], count)
        yield family
    policies = sorted(bus.batching_policies().items())
    for name, what, field in (
        ("amcp_bus_batch_max_messages", "Messages a batch may hold", "max_messages"),
        ("amcp_bus_batch_max_bytes", "Bytes a batch may hold", "max_bytes"),
        ("amcp_bus_batch_linger_seconds", "How long a batch may wait to fill", "linger_seconds"),
    ):
        gauge = GaugeMetricFamily(
            f"{name}", f"{what}, in force per subject family", labels=["family"]
        )
        for label, policy in policies:
            gauge.add_metric([label], getattr(policy, field))
        yield gauge


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
        self.request_seconds = Histogram(
            "amcp_bus_request_seconds",
            "Answered requests' round trips, by destination subject family",
            ["family"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "amcp_agent_decision_seconds",
            "Votes this agent proposed, from proposal to the decision on record, by outcome",
            ["outcome"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.replication_lag = Histogram(
            "amcp_crdt_replication_lag_seconds",
            "Age of each peer's CRDT delta frame on arrival at this replica",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.port: int | None = None
        self._server: Any = None
        self._per_tool: dict[tuple[str, str], Any] = {}
        self._per_family: dict[str, Any] = {}

    def call_done(self, tool: str, outcome: str, seconds: float) -> None:
        """Count one call (labelled children cached: this is on every call's path)."""
        children = self._per_tool.get((tool, outcome))
        if children is None:
            children = (self.calls.labels(tool, outcome), self.call_seconds.labels(tool))
            self._per_tool[(tool, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)

    def request_done(self, family: str, seconds: float) -> None:
        """Time one answered request (the bus's `on_request`)."""
        child = self._per_family.get(family)
        if child is None:
            child = self._per_family[family] = self.request_seconds.labels(family)
        child.observe(seconds)

    def decision_done(self, outcome: str, seconds: float) -> None:
        """Time one decision on a vote this agent proposed."""
        self.decision_seconds.labels(outcome).observe(seconds)

    def watch(
        self,
        pool: Any,
        rejections: Callable[[], Mapping[str, int]],
        liveness: Callable[[], Mapping[str, int]],
        audit_entries: Callable[[], int],
        *,
        bus: Bus | None = None,
        store: Any = None,
    ) -> None:
        """Mirror the pool, the bus rejections and traffic, the member liveness and the
        audit entries at scrape time (nothing to do per call); time `bus`'s requests and
        `store`'s replication lag (a crdt ContextStore) as they happen."""
        self.pool_running.set_function(lambda: pool.running)
        self.pool_waiting.set_function(lambda: pool.waiting)
        self.registry.register(_LiveCollector(rejections, liveness, audit_entries, bus))
        if bus is not None:
            bus.on_request = self.request_done
        if store is not None and hasattr(store, "on_replication_lag"):
            store.on_replication_lag = self.replication_lag.observe

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics over HTTP (port 0: any free port); returns the port."""
        try:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:  # the port taken, a host that is not this one's
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from None
        self.port = int(self._server.server_port)
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
