"""The pure parts of at-most-once across a queue group: the bucket's name, a claim's key
and lifetime, and which built-in tools say they are read-only (and so take no claim)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.runtime.admin import admin_tools
from agents.runtime.catalog import BUILTIN
from agents.runtime.config import AgentConfig
from agents.runtime.extension import load_extensions
from agents.runtime.subjects import ROLES
from agents.runtime.tools import ToolRegistry
from amcp.claims import claim_key, claim_ttl, claims_bucket
from amcp.envelope import MAX_NAME_CHARS
from amcp.errors import ConfigError

KV_KEY = re.compile(r"^[-/_=.a-zA-Z0-9]+$")  # nats-py's own check of a key
BUCKET = re.compile(r"^[a-zA-Z0-9_-]+$")
senders = st.text(min_size=1, max_size=MAX_NAME_CHARS)
u64 = st.integers(0, 2**64 - 1)


def test_the_bucket_is_named_after_the_cluster() -> None:
    assert claims_bucket("default") == "AMCP_CLAIMS_default"
    assert BUCKET.match(claims_bucket("a-b_C9"))
    with pytest.raises(ConfigError, match="invalid cluster name"):
        claims_bucket("a.b")


@given(st.floats(0.001, 3600))
def test_a_claim_outlives_twice_the_skew_window(skew: float) -> None:
    assert 2 * skew < claim_ttl(skew) <= 2.2 * skew + 0.001


@given(senders, u64, u64)
def test_any_replay_identity_makes_a_valid_key(sender: str, epoch: int, seq: int) -> None:
    key = claim_key(sender, epoch, seq)
    assert KV_KEY.match(key) and len(key) == 32
    assert claim_key(sender, epoch, seq) == key  # every member computes the same key


@given(st.tuples(senders, u64, u64), st.tuples(senders, u64, u64))
def test_distinct_identities_get_distinct_keys(a, b) -> None:
    assert (claim_key(*a) == claim_key(*b)) == (a == b)


def test_names_and_numbers_cannot_run_into_each_other() -> None:
    assert claim_key("a\x00", 1, 2) != claim_key("a", 1 << 56, 2)
    assert claim_key("s1", 1, 2) != claim_key("s1", 2, 1)


READ_ONLY = {
    "describe", "members", "viability", "echo", "sleep", "analyse", "traffic", "classify",
    "resolve", "approve-allocation", "escalate",
}  # fmt: skip
ACTS = {"remove-member", "execute", "claim", "release", "run-task", "authorise"}


def test_the_built_in_tools_say_honestly_whether_they_are_read_only() -> None:
    tools = {t.name: t for t in admin_tools(None, ToolRegistry(), ())}  # type: ignore[arg-type]
    tools.update(BUILTIN)
    for role in ROLES:
        for extension in load_extensions(AgentConfig(role=role)):
            tools.update((t.name, t) for t in extension.tools())
    assert set(tools) == READ_ONLY | ACTS
    assert {name for name, t in tools.items() if t.read_only} == READ_ONLY
    assert all(t.spec()["read_only"] is (name in READ_ONLY) for name, t in tools.items())
