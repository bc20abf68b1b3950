"""Strict decoding on a real nats-server (issue 13, point 6): correctly signed frames that
PROTOCOL.md forbids are refused and counted as `malformed`, never delivered: an envelope of
12 or 13 fields, a body holding the msgpack timestamp extension (-1, which msgspec would
hand over as a datetime), headers over 4096 UTF-8 bytes, a batch frame of another kind."""

from __future__ import annotations

import time

from amcp.envelope import FLAG_BATCH
from amcp.framebody import batch_body, encode_item
from tests.support.waiting import wait_until

SUBJECT = "strict.x"


def signed(bus, raw_body: bytes, *, fields: bytes = b"\x9b", kind: str = "msg",
           headers: dict[str, str] | None = None, flags: int = 0) -> bytes:  # fmt: skip
    sealer = bus.sealer
    now = time.time()
    key = sealer.current_key(now)
    sealer.seq += 1
    head = sealer._prefix(flags, sealer.seq, now, key)[1:] + encode_item(kind, headers, None)[0]
    extra = b"\xc0" * (fields[0] - 0x9B)  # elements past the 11th
    return key.mac.seal(SUBJECT, fields + head + raw_body + extra)


async def test_signed_frames_the_spec_forbids_are_counted_and_not_delivered(make_bus) -> None:
    sender = await make_bus("sender")
    receiver = await make_bus("receiver")
    sub = await receiver.subscribe(SUBJECT)
    await receiver.flush()  # the server has the subscription before the sender publishes
    forbidden = [
        signed(sender, b"\x01", fields=b"\x9c"),
        signed(sender, b"\x01", fields=b"\x9d"),
        signed(sender, b"\xd6\xff\x00\x00\x00\x00"),  # timestamp 1970-01-01
        signed(sender, b"\x92\x01\xd7\xff" + bytes(8)),
        signed(sender, b"\x01", headers={"k": "\u00e9" * 2048}),  # 4097 bytes
        signed(
            sender,
            batch_body(sender.sealer.seq + 2, [encode_item("msg", None, 1)] * 2),
            flags=FLAG_BATCH,
        ),  # a batch of kind "msg"
    ]
    for frame in forbidden:
        await sender.publish_frame(SUBJECT, frame)
    await sender.publish(SUBJECT, "genuine")
    assert (await sub.next(5)).body == "genuine"
    await wait_until(
        lambda: receiver.stats.counts["malformed"] == len(forbidden), 5, what="all counted"
    )
    assert sub.delivered == 1
