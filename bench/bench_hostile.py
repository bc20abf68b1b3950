"""CPU a receiver spends on one hostile frame until it is refused, beside a random frame of
the same size (issue 14, point 3): Opener.open, median of repeated runs, in one process.

Two random frames: `random bytes` (refused as malformed before any MAC: the cheapest) and
`random body` (current fixed fields around a bin of random bytes, a wrong MAC: the cheapest
frame that reaches the MAC check, what a stranger pays the receiver at the least). The
ratios are against both; against `random body` every stranger's frame must stay near 1.

A stranger's frame (a wrong MAC) costs the fixed fields and the MAC, whatever its body
holds: the body is scanned and decoded only once the MAC verified. The `hmac` column is
the SHA-256 pass over the frame any MAC check must make, the floor for a frame with a
current key id. The `signed` rows are a key holder's: the body is scanned (refused past
FrameLimits.max_containers lists and maps) and decoded.

    python bench/bench_hostile.py [--size BYTES] [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import os
import statistics
import time
from collections.abc import Callable

from amcp import Keyring
from amcp.envelope import MAC_SIZE, FrameLimits, pack_envelope
from amcp.errors import FrameRejected
from amcp.framebody import encode_item
from amcp.protocol import Opener, Sealer

SUBJECT = "amcp.bench.hostile"


def envelope(ring: Keyring, body_raw: bytes, headers: bytes = b"\x80") -> bytes:
    """An envelope of current fields around a raw msgpack body, with a wrong tag."""
    sealer = Sealer("mallory", ring)
    key = ring.signing_key(time.time())
    head = pack_envelope([1, 0, os.urandom(16), "mallory", sealer.epoch, 1,
                          int(time.time() * 1000), key.kid, "msg"])  # fmt: skip
    return b"\x9b" + head[1:] + headers + body_raw + os.urandom(MAC_SIZE)


def signed(sealer: Sealer, body_raw: bytes) -> Callable[[], bytes]:
    """A key holder's frames around a raw body: a new seq each, so none is a replay."""

    def make() -> bytes:
        now = time.time()
        key = sealer.current_key(now)
        sealer.seq += 1
        head = sealer._prefix(0, sealer.seq, now, key) + encode_item("msg", None, None)[0]
        return key.mac.seal(SUBJECT, head + body_raw)

    return make


def frames(ring: Keyring, size: int) -> dict[str, Callable[[], bytes]]:
    n = size - 120
    arrays = b"\xdd" + n.to_bytes(4, "big") + b"\x90" * n  # ~a million empty arrays
    deep = b"\x91" * (n - 1) + b"\xc0"
    maps = b"\xdf" + (n // 2).to_bytes(4, "big") + b"\x00\x80" * (n // 2)
    hdr = b"\xde\x00\x40" + b"".join(
        b"\xda" + (n // 130).to_bytes(2, "big") + b"k" * (n // 130) + b"\xa0" for _ in range(64)
    )
    most = FrameLimits().max_containers - 1  # with the outer list: at the bound, accepted
    bound = b"\xdd" + n.to_bytes(4, "big") + b"\x90" * most + b"\xc0" * (n - most)
    insider = Sealer("insider", ring)
    fixed = {
        "random bytes": os.urandom(size),
        "random body, bad MAC": envelope(
            ring, b"\xc6" + (n - 5).to_bytes(4, "big") + os.urandom(n - 5)
        ),
        "empty arrays, bad MAC": envelope(ring, arrays),
        "deep nesting, bad MAC": envelope(ring, deep),
        "empty maps, bad MAC": envelope(ring, maps),
        "huge headers, bad MAC": envelope(ring, b"\xc0", hdr),
        "13 fields, bad MAC": b"\x9d" + envelope(ring, arrays)[1:],
    }
    out: dict[str, Callable[[], bytes]] = {k: (lambda f=f: f) for k, f in fixed.items()}
    out["empty arrays, signed"] = signed(insider, arrays)
    out["max containers, signed"] = signed(insider, bound)
    return out


def cpu_per_frame(opener: Opener, make: Callable[[], bytes], runs: int) -> float:
    samples = []
    for _ in range(runs):
        frame = make()
        start = time.process_time()
        with contextlib.suppress(FrameRejected):
            opener.open(SUBJECT, frame)
        samples.append(time.process_time() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1 << 20, help="frame size in bytes")
    parser.add_argument("--runs", type=int, default=30, help="frames of each kind")
    args = parser.parse_args()
    ring = Keyring.generate()
    opener = Opener(ring)
    opener.open(SUBJECT, Sealer("warm", ring).seal(SUBJECT, 1))  # binds the subject's MAC
    key = os.urandom(32)
    made = frames(ring, args.size - 1)
    raw = cpu_per_frame(opener, made["random bytes"], args.runs)
    body = cpu_per_frame(opener, made["random body, bad MAC"], args.runs)
    print(f"random bytes {raw:.0f} us, random body {body:.0f} us per frame; ratios against each")
    print(f"{'frame kind':<24}{'bytes':>9}{'amcp us':>10}{'/bytes':>8}{'/body':>7}"
          f"{'hmac us':>9}{'/hmac':>7}")  # fmt: skip
    for kind, make in made.items():
        cost = cpu_per_frame(opener, make, args.runs)
        frame = make()
        t0 = time.process_time()
        for _ in range(args.runs):
            hmac.digest(key, frame, "sha256")
        mac = (time.process_time() - t0) / args.runs * 1e6
        print(
            f"{kind:<24}{len(frame):>9}{cost:>10.0f}{cost / raw:>8.1f}{cost / body:>7.2f}"
            f"{mac:>9.0f}{cost / mac:>7.2f}"
        )
    print("reasons:", {k: v for k, v in opener.stats.as_dict().items() if v})


if __name__ == "__main__":
    main()
