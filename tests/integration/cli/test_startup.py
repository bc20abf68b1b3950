"""`amcp send` on a real nats-server imports what sending needs and nothing of the traffic
analyser: with batching off a bus never samples, so numpy and scipy stay unloaded."""

from __future__ import annotations

from tests.support.importtime import imports_of


def test_send_imports_no_numeric_library(cli_env: dict[str, str]) -> None:
    found = imports_of("send", "startup.check", '{"n": 1}', env=cli_env)
    assert found.run.returncode == 0, found.run.stderr[-2000:]
    assert "amcp.bus" in found.names  # it did connect and send
    heavy = found.packages("numpy", "scipy", "matplotlib")
    assert heavy == [], found.explain(*heavy)
