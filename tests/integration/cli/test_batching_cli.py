"""`amcp traffic` as a user runs it, against live traffic on a real nats-server."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from tests.support.cli import amcp, amcp_async


async def publish_until(bus, done: asyncio.Event) -> dict[str, int]:
    """~1 000 msg/s steady on one family, a 40-message pulse every 0.5 s on another. On a
    schedule rather than per tick, so a loop that stalls on a busy machine catches up."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = {"steady": 0, "pulse": 0}
    while not done.is_set():
        elapsed = loop.time() - start
        while sent["steady"] < 1000 * elapsed:
            await bus.publish("tr.steady.x", sent["steady"])
            sent["steady"] += 1
        while sent["pulse"] < 40 * (1 + int(elapsed / 0.5)):
            await bus.publish("tr.pulse.y", sent["pulse"])
            sent["pulse"] += 1
        await asyncio.sleep(0.002)
    return sent


async def run_traffic(cli_env, plot) -> dict:
    args = ["--seconds", "3", "--json", "--plot", str(plot), "--subject", "tr.>"]
    done = await amcp_async("traffic", *args, env=cli_env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_traffic_json_and_plot(make_bus, cli_env, tmp_path):
    """What `amcp traffic` sees is the arrival pattern at its own process: on a machine
    loaded enough to stall either process for a bin or two (0.1 s), the 1 000 msg/s stream
    really arrives in lumps and is rightly called bursty. So the CLI is run up to three
    times, until the steady stream arrived steadily enough to be called steady."""
    bus = await make_bus("publisher")
    plot = tmp_path / "spectrum.png"
    done = asyncio.Event()
    publisher = asyncio.create_task(publish_until(bus, done))
    seen = []
    try:
        for _ in range(3):
            doc = await run_traffic(cli_env, plot)
            families = {f["family"]: f for f in doc["families"]}
            assert set(families) == {"tr.steady", "tr.pulse"}
            seen.append({name: f["class"] for name, f in families.items()})
            if families["tr.steady"]["class"] == "steady":
                break
    finally:
        done.set()
        await publisher
    steady, pulse = families["tr.steady"], families["tr.pulse"]
    assert steady["class"] == "steady" and steady["messages"] > 500, seen
    assert 300 < steady["rate"] < 1500
    assert pulse["class"] in ("periodic", "bursty")
    if pulse["class"] == "periodic":
        assert pulse["period_seconds"] == pytest.approx(0.5, abs=0.1)
    assert pulse["active_rate"] > pulse["rate"]  # the rate inside its pulses
    for family in (steady, pulse):
        assert set(family["policy"]) == {"max_messages", "max_bytes", "linger_ms"}
    assert doc["rejected"] == {}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seconds", "1"], "--seconds must be at least"),
        (["--subject", "a b"], "invalid subject"),
        (["--seconds", "x"], "invalid float value"),
    ],
)
def test_traffic_usage_errors_exit_2_with_one_line(args, message, cli_env):
    result = amcp("traffic", *args, env=cli_env, timeout=30)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_plot_without_matplotlib_says_what_to_install(cli_env):
    hide = (
        "import sys; sys.modules['matplotlib'] = None; from amcp.cli.main import main; "
        "sys.exit(main(['traffic', '--plot', 'x.png', '--seconds', '3']))"
    )
    result = amcp(program=[sys.executable, "-c", hide], env=cli_env, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "pip install 'amcp[plot]'" in result.stderr
