"""DecisionRetention: defaults, the environment override the agents read, and refusals."""

from __future__ import annotations

import pytest

from consensus import ConsensusError, DecisionRetention


def test_defaults_and_environment_override() -> None:
    assert DecisionRetention.from_env({}) == DecisionRetention(horizon_s=3600.0, max_records=10_000)
    env = {"AMCP_DECISION_HORIZON": "60", "AMCP_DECISION_MAX": "2000"}
    assert DecisionRetention.from_env(env) == DecisionRetention(horizon_s=60.0, max_records=2000)
    assert DecisionRetention.from_env({"AMCP_DECISION_MAX": ""}).max_records == 10_000


@pytest.mark.parametrize(
    "env",
    [
        {"AMCP_DECISION_HORIZON": "soon"},
        {"AMCP_DECISION_HORIZON": "0"},
        {"AMCP_DECISION_HORIZON": "-5"},
        {"AMCP_DECISION_HORIZON": "inf"},
        {"AMCP_DECISION_MAX": "1.5"},
        {"AMCP_DECISION_MAX": "0"},
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(ConsensusError):
        DecisionRetention.from_env(env)
