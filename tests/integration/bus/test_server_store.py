"""The test server's JetStream file store limit: streams reserve their max_bytes against
it, so the session-wide server must take far more 1 GiB audit streams (one per test's
cluster namespace) than the default limit, 75% of the free disk, allows."""

from __future__ import annotations

import nats
from nats.js.api import StorageType, StreamConfig

from amcp.server import NatsServer

GIB = 1 << 30


async def _reservations(server: NatsServer, wanted: int) -> int:
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    made = 0
    try:
        for i in range(wanted):
            config = StreamConfig(
                name=f"R{i}", subjects=[f"r{i}.>"], max_bytes=GIB, storage=StorageType.FILE
            )
            await js.add_stream(config)
            made += 1
    except nats.js.errors.APIError:
        pass
    finally:
        await nc.close()
    return made


async def test_max_file_store_lifts_the_reservation_limit() -> None:
    # more 1 GiB reservations than a 100 TB disk's default limit would grant
    wanted = 200
    with NatsServer(name="store-limit", max_file_store="100T") as server:
        assert await _reservations(server, wanted) == wanted
    with NatsServer(name="store-limit", max_file_store=str(20 * GIB)) as server:
        assert await _reservations(server, wanted) == 20  # the limit is the one configured
