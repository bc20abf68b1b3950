"""MCP bridge benchmark: tool calls from the MCP SDK's client through `amcp mcp serve` to an
agent over the bus, beside the same client calling a plain SDK server that answers
directly, in the same run.

Bridge: SDK ClientSession -> stdio -> `amcp mcp serve` -> signed request/reply on NATS ->
an `amcp-agent` (s1) serving the catalogued `echo` tool (validated, run in its pool,
audited) -> back. Direct: the same ClientSession code -> stdio -> a low-level SDK Server
whose `echo` answers at once with the same result shape (structuredContent + JSON text).
Both are subprocesses over stdio, as an MCP client runs them. Trials alternate so machine
noise hits both; each trial runs `--seconds` with `--concurrency` calls in flight; medians
of the trials are printed: calls per second, p50 and p99.

    python bench/bench_mcp.py [--seconds 3] [--trials 5] [--concurrency 1]

Target (issue 17): the bridge adds at most 1 ms p50 over the direct server and keeps at
least 0.5x its calls per second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from agents import AgentClient, AgentProcess
from amcp import Bus, Keyring, NatsServer

CLUSTER = "bench-mcp"
ARGS = {"text": "hello, agent"}
DIRECT_SERVER = """
import anyio, json
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

TOOL = types.Tool(
    name="echo",
    description="Return the text unchanged.",
    input_schema={"type": "object", "properties": {"text": {"type": "string"}},
                  "required": ["text"]},
    output_schema={"type": "object", "properties": {"text": {"type": "string"}},
                   "required": ["text"]},
)

async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[TOOL])

async def call_tool(ctx, params):
    out = {"text": (params.arguments or {}).get("text", "")}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(out, indent=2))],
        structured_content=out,
    )

server = Server("direct", on_list_tools=list_tools, on_call_tool=call_tool)

async def main():
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())

anyio.run(main)
"""


@contextlib.asynccontextmanager
async def session(command: list[str], env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    async with (
        stdio_client(params, errlog=sys.stderr) as (read, write),
        ClientSession(read, write) as client,
    ):
        await client.initialize()
        yield client


async def trial(client: ClientSession, tool: str, seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            result = await client.call_tool(tool, ARGS)
            latencies.append(time.perf_counter() - started)
            if result.is_error or result.structured_content != ARGS:
                raise SystemExit(f"{tool}: unexpected result {result}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    got = sorted(latencies)
    return {
        "rate": len(got) / elapsed,
        "p50": 1e3 * got[len(got) // 2],
        "p99": 1e3 * got[min(len(got) - 1, int(len(got) * 0.99))],
    }


async def wait_for_tool(client: ClientSession, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while name not in {t.name for t in (await client.list_tools()).tools}:
        if time.monotonic() > deadline:
            raise SystemExit(f"the bridge did not list {name} within {timeout}s")
        await asyncio.sleep(0.2)


async def wait_for_agent(url: str, keyring: Keyring, agent_id: str) -> None:
    bus = await Bus.connect(url, keyring=keyring, sender="bench-probe", cluster=CLUSTER)
    try:
        client = AgentClient(bus)
        deadline = time.monotonic() + 30
        while True:
            try:
                await client.call(agent_id, "describe", timeout=1.0)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
    finally:
        await bus.close()


def summary(name: str, trials: list[dict]) -> dict:
    med = {k: statistics.median(t[k] for t in trials) for k in ("rate", "p50", "p99")}
    print(
        f"  {name:<28} {med['rate']:9.0f} calls/s   p50 {med['p50']:6.3f} ms   "
        f"p99 {med['p99']:6.3f} ms   (trials: "
        + ", ".join(f"{t['rate']:.0f}/s {t['p50']:.2f}ms" for t in trials)
        + ")"
    )
    return med


async def main(opts: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, NatsServer(name="bench-mcp") as server:
        keyring = Keyring.generate()
        ring = keyring.save(Path(tmp) / "keyring.json")
        agent = AgentProcess(
            "s1",
            "s1-bench",
            nats=server.url,
            keyring=ring,
            cluster=CLUSTER,
            capabilities=["echo"],
            args=["--pool", "64", "--queue", "4096", "--log-level", "warning"],
            log_dir=tmp,
        ).start()
        try:
            await wait_for_agent(server.url, keyring, "s1-bench")
            env = {
                **os.environ,
                "AMCP_NATS_URL": server.url,
                "AMCP_KEYRING": str(ring),
                "AMCP_CLUSTER": CLUSTER,
            }
            direct_py = Path(tmp) / "direct_server.py"
            direct_py.write_text(DIRECT_SERVER)
            amcp = str(Path(sys.executable).parent / "amcp")
            async with (
                session([amcp, "mcp", "serve"], env) as bridge,
                session([sys.executable, str(direct_py)], env) as direct,
            ):
                await wait_for_tool(bridge, "s1__echo")
                # warm both paths (imports, the agent's pool, RTO samples)
                await trial(bridge, "s1__echo", 0.5, opts.concurrency)
                await trial(direct, "echo", 0.5, opts.concurrency)
                runs: dict[str, list[dict]] = {"bridge": [], "direct": []}
                for _ in range(opts.trials):
                    runs["bridge"].append(
                        await trial(bridge, "s1__echo", opts.seconds, opts.concurrency)
                    )
                    runs["direct"].append(
                        await trial(direct, "echo", opts.seconds, opts.concurrency)
                    )
        finally:
            agent.close()
    print(
        f"MCP tools/call, {opts.concurrency} in flight, {opts.trials} trials of "
        f"{opts.seconds:g} s (medians):"
    )
    b = summary("bridge -> bus -> agent", runs["bridge"])
    d = summary("plain SDK server", runs["direct"])
    added, ratio = b["p50"] - d["p50"], b["rate"] / d["rate"]
    print(
        f"  bridge adds {added:.3f} ms p50 (target <= 1 ms: {'met' if added <= 1 else 'NOT met'}),"
        f" {ratio:.2f}x the calls/s (target >= 0.5x: {'met' if ratio >= 0.5 else 'NOT met'})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
