"""A long-lived process's batching mode: the flag, else $AMCP_BATCHING, else off."""

from __future__ import annotations

import pytest

from amcp.cli.common import BATCHING_ENV, batching_mode
from amcp.errors import ConfigError


def test_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BATCHING_ENV, raising=False)
    assert batching_mode() == "off"
    assert batching_mode("adaptive") == "adaptive"


def test_the_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BATCHING_ENV, "adaptive")
    assert batching_mode() == "adaptive"
    assert batching_mode("off") == "off"


def test_a_bad_mode_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BATCHING_ENV, "sometimes")
    with pytest.raises(ConfigError, match="AMCP_BATCHING must be one of off, adaptive"):
        batching_mode()
