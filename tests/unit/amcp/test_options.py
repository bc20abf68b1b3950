"""BusOptions: one options object for Bus and Bus.connect, which also takes each field as
a keyword and leaves every other keyword to nats-py."""

from __future__ import annotations

import dataclasses

import pytest
from nats.aio.client import Client as NatsClient

from amcp import Bus, BusOptions, FrameLimits, Keyring


def test_keywords_that_name_an_option_update_it_and_the_rest_are_left_for_nats() -> None:
    base = BusOptions(cluster="prod", replay_window=64)
    options, rest = base.updated({"batching": "adaptive", "dont_randomize": True})
    assert options == BusOptions(cluster="prod", replay_window=64, batching="adaptive")
    assert rest == {"dont_randomize": True}
    assert base.batching == "off"  # frozen: updated returns a new object


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BusOptions().cluster = "other"  # type: ignore[misc]


def test_a_bus_takes_its_settings_from_its_options() -> None:
    limits = FrameLimits(max_frame_bytes=4096)
    options = BusOptions(cluster="prod", limits=limits, attention_threshold=0.5)
    bus = Bus(NatsClient(), Keyring.generate(), "alice", options)
    assert (bus.cluster, bus.subjects.cluster, bus.limits) == ("prod", "prod", limits)
    assert bus.attention_threshold == 0.5 and bus.sealer.limits is limits
    assert Bus(NatsClient(), Keyring.generate(), "bob").limits == FrameLimits()
