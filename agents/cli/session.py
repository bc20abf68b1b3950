"""One command's session with the cluster: connect, hand an AgentClient to the command's
body, close. Cluster questions are answered by any live agent (the `any` queue group),
which hosts a replica of the member list and hears every heartbeat, so the CLI itself keeps
no state.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from amcp.cli.common import EXIT_TIMEOUT, connect
from amcp.errors import NoResponders

# The client (the bus, pydantic models) loads when a command runs, not for --help.
if TYPE_CHECKING:
    from agents.runtime.client import AgentClient

__all__ = ["with_client"]


def with_client(args: argparse.Namespace, body: Callable[[AgentClient], Awaitable[int]]) -> int:
    """Run `body(client)` on a fresh connection; no agent to answer is exit 3."""
    import asyncio

    from agents.runtime.client import AgentClient

    async def main() -> int:
        bus = await connect(args)
        try:
            return await body(AgentClient(bus, timeout=getattr(args, "timeout", 5.0)))
        except NoResponders as exc:  # the client says who is missing (an unknown id, a role)
            print(f"amcp: {exc}", file=sys.stderr)
            return EXIT_TIMEOUT
        finally:
            await bus.close()

    return asyncio.run(main())
