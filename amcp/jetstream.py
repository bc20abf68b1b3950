"""Durable streams of signed frames in JetStream: create a stream, publish into it, read
it back. A bus's `streams`; the frames are sealed by the bus's own Sealer, so a stored
frame is signed and numbered like any live one (docs/PROTOCOL.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable
from typing import Any

from nats.aio.client import Client as NatsClient

from amcp.errors import AmcpError, RequestTimeout
from amcp.protocol import Sealer
from amcp.tracing import with_trace

__all__ = ["Streams"]


class Streams:
    """The JetStream side of one bus connection: its streams and durable publishing."""

    def __init__(self, nc: NatsClient, sealer: Sealer) -> None:
        self.nc = nc
        self.sealer = sealer
        self._js: Any = None  # the JetStream context of `send`, made on first use

    async def ensure(
        self,
        name: str,
        subjects: list[str],
        *,
        max_msgs: int = -1,
        max_bytes: int = -1,
        replicas: int = 1,
    ) -> None:
        """Create a file-backed stream unless it exists; an existing one is kept as it is
        (so an operator may create it first with more `replicas`, e.g. 3 on a cluster)."""
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        config = StreamConfig(
            name=name,
            subjects=subjects,
            max_msgs=max_msgs,
            max_bytes=max_bytes,
            storage=StorageType.FILE,
            num_replicas=replicas,
        )
        js = self.nc.jetstream()
        try:
            try:
                await js.stream_info(name)
                return
            except NotFoundError:
                await js.add_stream(config)
        except Exception as exc:
            raise AmcpError(f"cannot create JetStream stream {name}: {exc}") from None

    async def publish(
        self,
        subject: str,
        body: Any,
        *,
        kind: str = "msg",
        headers: dict[str, str] | None = None,
        timeout: float = 2.0,
    ) -> int:
        """Sign and publish into a JetStream stream; return its stream sequence once stored."""
        stored = await self.send(subject, body, kind=kind, headers=headers, timeout=timeout)
        return await stored

    async def send(
        self,
        subject: str,
        body: Any,
        *,
        kind: str = "msg",
        headers: dict[str, str] | None = None,
        timeout: float = 2.0,
    ) -> Awaitable[int]:
        """Sign and hand one message to JetStream. Returns once it is sent, in call order,
        with an awaitable (await it) of its stream sequence: several writes can then be in
        flight and still be stored in the order they were sent."""
        frame = self.sealer.seal(subject, body, kind, with_trace(headers))
        if self._js is None:  # one context: publish_async keeps its reply inbox there
            self._js = self.nc.jetstream()
        try:
            ack = await self._js.publish_async(subject, frame)
        except Exception as exc:
            raise AmcpError(f"JetStream did not take the message on {subject}: {exc}") from None
        return _stored(ack, subject, timeout)

    async def read(
        self,
        stream: str,
        *,
        subject: str | None = None,
        last: int | None = None,
        timeout: float = 2.0,
    ) -> list[tuple[int, str, bytes]]:
        """Stored frames as (stream sequence, subject, frame), oldest first, the `last` ones.

        The frames are returned unverified: they are old by design, so the caller checks
        them with an Opener of its own rather than the bus's live replay windows.
        """
        from nats.js.api import ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        js = self.nc.jetstream()
        try:
            info = await js.stream_info(stream, subjects_filter=subject)
        except NotFoundError:
            return []
        except Exception as exc:
            raise AmcpError(f"cannot read JetStream stream {stream}: {exc}") from None
        state = info.state
        total = sum((state.subjects or {}).values()) if subject else state.messages
        if not total or (last is not None and last < 1):
            return []
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        if subject is None and last is not None:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = max(state.first_seq, state.last_seq - last + 1)
        sub = await js.subscribe(
            subject or ">", stream=stream, ordered_consumer=True, config=config
        )
        frames: deque[tuple[int, str, bytes]] = deque(maxlen=last)
        try:
            while True:
                msg = await sub.next_msg(timeout)
                meta = msg.metadata
                frames.append((meta.sequence.stream, msg.subject, msg.data))
                if meta.num_pending == 0:
                    break
        except TimeoutError:
            raise RequestTimeout(f"stream {stream} stopped delivering after {timeout}s") from None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return list(frames)


async def _stored(ack: asyncio.Future[Any], subject: str, timeout: float) -> int:
    try:
        return (await asyncio.wait_for(ack, timeout)).seq
    except Exception as exc:
        why = str(exc) or type(exc).__name__
        raise AmcpError(f"JetStream did not store the message on {subject}: {why}") from None
