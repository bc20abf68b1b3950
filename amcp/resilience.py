"""A request retried with jittered backoff behind its destination's circuit breaker: the
loop of `Bus.request_with_retry`, for idempotent operations only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from amcp.errors import AmcpError, CircuitOpen, NoResponders, RequestTimeout
from amcp.message import Message
from netopt import Backoff, CircuitBreaker

__all__ = ["retry_request"]


async def retry_request(
    send: Callable[[], Awaitable[Message]],
    subject: str,
    breaker: CircuitBreaker,
    backoff: Backoff,
    *,
    retry_no_responders: bool,
) -> Message:
    """`send()` until it answers, at most `backoff.max_retries` times more, while
    `breaker` allows; the breaker hears of every attempt's outcome."""
    loop = asyncio.get_running_loop()
    failure: AmcpError | None = None
    for attempt in range(backoff.max_retries + 1):
        if attempt:
            await asyncio.sleep(backoff.delay(attempt - 1))
        if not breaker.allow(loop.time()):
            raise CircuitOpen(
                f"circuit for {subject} is {breaker.state}: too many failed requests; "
                f"not sending for up to {breaker.open_seconds:g} s"
            ) from failure
        try:
            msg = await send()
        except (RequestTimeout, NoResponders) as exc:
            if isinstance(exc, NoResponders) and not retry_no_responders:
                breaker.on_success()  # an answer, if not the one hoped for
                raise
            breaker.on_failure(loop.time())
            failure = exc
            continue
        except BaseException:  # cancelled or disconnected: the attempt must be reported
            breaker.on_failure(loop.time())
            raise
        breaker.on_success()
        return msg
    assert failure is not None
    raise failure
