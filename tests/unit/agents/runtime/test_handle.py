"""What extensions and tools see of an agent: the AgentHandle protocol, which Agent
satisfies, and the cluster-wide sections extensions add to the cluster view."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from agents import Agent, AgentConfig, AgentHandle, ClusterView, Extension
from agents.runtime.admin import cluster_sections
from amcp.subjects import Subjects


def an_agent() -> Agent:
    bus: Any = SimpleNamespace(subjects=Subjects("c1"), cluster="c1")  # never connected
    return Agent(bus, AgentConfig(role="s1", agent_id="s1-h"))


def test_an_agent_is_an_agent_handle() -> None:
    agent = an_agent()
    handle: AgentHandle = agent  # the static check: a type checker compares the members
    assert isinstance(handle, AgentHandle)  # the runtime check: every member is present
    assert handle.has_tool("describe") and not handle.has_tool("nope")
    assert dict(handle.calls) == {"ok": 0, "failed": 0, "refused": 0, "invalid": 0}
    assert handle.store is None and handle.membership is None and handle.members() == []


def test_something_that_is_not_an_agent_is_no_handle() -> None:
    assert not isinstance(SimpleNamespace(id="x", role="s1"), AgentHandle)


class Sections(Extension):
    def __init__(self, name: str, sections: dict[str, Any]) -> None:
        self.name = name
        self._sections = sections

    def sections(self) -> dict[str, Any]:
        return self._sections


def test_the_first_extension_with_a_value_gives_a_section() -> None:
    extensions = [
        Extension(),
        Sections("a", {"viability": None, "x": 1}),
        Sections("b", {"viability": {"m": 1}, "x": 2}),
        Sections("c", {"viability": {"m": 3}}),
    ]
    assert cluster_sections(extensions) == {"viability": {"m": 1}, "x": 1}
    assert cluster_sections([Sections("a", {"viability": None})]) == {"viability": None}
    assert cluster_sections([]) == {}


def test_sections_are_keys_of_the_cluster_view_before_the_extensions() -> None:
    view = ClusterView.model_validate(
        {"cluster": "c1", "observer": "s1-h", "members": [], "extensions": {"e": {"n": 1}}}
        | {"viability": {"m": 1}}  # a section: a key the model does not declare
    )
    doc = view.model_dump(mode="json")
    assert list(doc) == ["cluster", "observer", "members", "viability", "extensions"]
    again = ClusterView.model_validate(doc)
    assert again.section("viability") == {"m": 1} and again.section("other") is None
    assert list(ClusterView(cluster="c", observer="o", members=[]).model_dump()) == [
        "cluster",
        "observer",
        "members",
        "extensions",
    ]
