"""Anti-replay as IPsec does it (RFC 4303 section 3.4.3, RFC 6479).

Each sender numbers its frames within an epoch (its start time). The receiver keeps, per
sender, the highest sequence number seen and a bitmap of the `window` numbers below it.
`check` is the cheap pre-MAC test; `commit` moves the window and must only be called
after the MAC verified, so forged frames cannot advance it. Memory is bounded by the
window size times the number of senders tracked (a segmented LRU), never by traffic volume.

`ReplayGuard` is the compiled `amcp._speedups.ReplayGuard` when it was built (it lets the
compiled `Opener.open` check and commit without a Python call), else `PyReplayGuard`, the
reference: same methods, same answers, same table order (tests compare the two).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from amcp.envelope import Reason
from amcp.speedups import compiled

__all__ = ["MAX_WINDOW", "PyReplayGuard", "ReplayGuard", "SenderWindow", "live_guard"]

MAX_WINDOW = 1 << 20
"""The largest window (in seqs) a guard takes; RFC 6479 windows are thousands."""


class SenderWindow:
    """The window of one sender epoch. Bit i of `bitmap` set means seq `top - i` was seen.
    Seqs below `base` (the first one this window saw) predate it: they may have been seen
    before the sender was evicted or the receiver restarted, so the floor applies to them."""

    __slots__ = ("base", "bitmap", "epoch", "last_ts", "top")

    def __init__(self, epoch: int, seq: int, ts_ms: int) -> None:
        self.reset(epoch, seq, ts_ms)

    def reset(self, epoch: int, seq: int, ts_ms: int) -> None:
        """Start the window over for an epoch, at its first seq."""
        self.epoch = epoch
        self.top = self.base = seq
        self.bitmap = 1
        self.last_ts = ts_ms


class PyReplayGuard:
    """Per-sender windows with a bounded, scan-resistant table and a timestamp skew check.

    The table is a segmented LRU (SLRU, Karedla et al. 1994): a sender's first committed
    frame puts it on probation, any later commit promotes it to the protected segment (at
    most `max_senders * 4 // 5`, whose least recent entry is then demoted to probation's
    most recent end), and eviction takes probation's least recent entry (probation is never
    empty then: protected is smaller than the table). So a flood of one-frame senders only
    churns probation and never evicts a sender that sent two frames or more.

    A sender the table does not track is only accepted with a timestamp above
    `evicted_floor_ms`. It starts at `floor_ms` (a live receiver's start: it cannot know
    what it saw before, see `live_guard`) and each eviction raises it to the evicted
    sender's newest timestamp, capped at the receiver's clock, so evicting a sender never
    reopens the door to its old frames and a flood of future-stamped senders never locks
    out current ones. (The window logic is written out in check/commit rather than split
    into methods: it runs per frame.)
    """

    def __init__(
        self,
        window: int = 1024,
        skew_ms: int = 30_000,
        max_senders: int = 4096,
        floor_ms: int = 0,
    ):
        if (
            not 32 <= window <= MAX_WINDOW
            or max_senders < 1
            or not 0 <= skew_ms < 1 << 63
            or not 0 <= floor_ms < 1 << 64
        ):
            raise ValueError(
                "32 <= window <= 1048576, max_senders >= 1, 0 <= skew_ms < 2**63 and "
                "0 <= floor_ms < 2**64 are required"
            )
        self.window = window
        self.skew_ms = skew_ms
        self.max_senders = max_senders
        self.evicted_floor_ms = floor_ms
        self._mask = (1 << window) - 1
        self._protected_max = max_senders * 4 // 5
        # Each least recently committed first; a sender is in exactly one of them.
        self._probation: OrderedDict[str, SenderWindow] = OrderedDict()
        self._protected: OrderedDict[str, SenderWindow] = OrderedDict()

    def __len__(self) -> int:
        return len(self._probation) + len(self._protected)

    def _window(self, sender: str) -> SenderWindow | None:
        win = self._protected.get(sender)
        return self._probation.get(sender) if win is None else win

    def check(self, sender: str, epoch: int, seq: int, ts_ms: int, now_ms: int) -> str | None:
        """Pre-MAC test: None if the frame may be verified, else a rejection reason."""
        if ts_ms - now_ms > self.skew_ms or now_ms - ts_ms > self.skew_ms:
            return Reason.STALE
        win = self._window(sender)
        if win is None:
            return Reason.STALE if ts_ms <= self.evicted_floor_ms else None
        if epoch != win.epoch:
            # An older epoch is closed (the sender restarted since); a newer one starts fresh.
            return Reason.STALE if epoch < win.epoch else None
        if seq > win.top:
            return None
        diff = win.top - seq
        if diff >= self.window or (win.bitmap >> diff) & 1:
            return Reason.REPLAY
        if seq < win.base and ts_ms <= self.evicted_floor_ms:
            return Reason.STALE  # older than the window, and than what the floor lets in
        return None

    def commit(self, sender: str, epoch: int, seq: int, ts_ms: int, now_ms: int) -> None:
        """Record a verified frame (call only after the MAC checked out); `now_ms` is the
        receiver's clock, which an eviction's floor never passes."""
        protected, probation = self._protected, self._probation
        win = protected.get(sender)
        if win is None:
            win = probation.pop(sender, None)
            if win is None:  # a first frame: on probation
                probation[sender] = SenderWindow(epoch, seq, ts_ms)
                if len(probation) + len(protected) > self.max_senders:
                    _, old = probation.popitem(last=False)
                    floor = min(old.last_ts, now_ms)  # past now it would lock out current senders
                    if floor > self.evicted_floor_ms:
                        self.evicted_floor_ms = floor
                return
            protected[sender] = win  # a later frame: promoted
            if len(protected) > self._protected_max:
                demoted, old = protected.popitem(last=False)
                probation[demoted] = old
        else:
            protected.move_to_end(sender)
        if win.epoch != epoch:
            win.reset(epoch, seq, ts_ms)  # a new epoch takes the same place
            return
        top = win.top
        if seq > top:
            shift = seq - top
            win.bitmap = ((win.bitmap << shift) | 1) & self._mask if shift < self.window else 1
            win.top = seq
        elif top - seq < self.window:  # below the window: nothing to record
            win.bitmap |= 1 << (top - seq)
        if ts_ms > win.last_ts:
            win.last_ts = ts_ms

    def admit(
        self, sender: str, epoch: int, seqs: list[int], ts_ms: int, now_ms: int
    ) -> list[bool]:
        """Check and record, in order, the seqs of a batch's inner messages: True where
        new, False where a replay. Call only after the batch frame itself verified and was
        committed (its timestamp and epoch checks cover the inner messages)."""
        win = self._window(sender)
        if win is None or win.epoch != epoch:  # evicted since the commit: the general path
            out = []
            for seq in seqs:
                ok = self.check(sender, epoch, seq, ts_ms, ts_ms) is None
                if ok:
                    self.commit(sender, epoch, seq, ts_ms, now_ms)
                out.append(ok)
            return out
        window, mask = self.window, self._mask
        top, bitmap = win.top, win.bitmap
        predates = ts_ms <= self.evicted_floor_ms  # then seqs below the base are refused
        admitted = []
        for seq in seqs:
            if seq > top:
                shift = seq - top
                bitmap = ((bitmap << shift) | 1) & mask if shift < window else 1
                top = seq
                admitted.append(True)
            elif (
                top - seq >= window or (bitmap >> (top - seq)) & 1 or (predates and seq < win.base)
            ):
                admitted.append(False)
            else:
                bitmap |= 1 << (top - seq)
                admitted.append(True)
        win.top, win.bitmap = top, bitmap
        if ts_ms > win.last_ts:
            win.last_ts = ts_ms
        return admitted

    def windows(self) -> list[tuple[str, int, int, int, int]]:
        """(sender, epoch, top, bitmap, last_ts) of each tracked sender: the probationary
        segment, then the protected one, each least recently committed first (the order of
        eviction); bit i of bitmap set means seq top - i was seen (i < window)."""
        return [
            (sender, w.epoch, w.top, w.bitmap & self._mask, w.last_ts)
            for segment in (self._probation, self._protected)
            for sender, w in segment.items()
        ]


ReplayGuard: Any = compiled("ReplayGuard") or PyReplayGuard


def live_guard(window: int, skew_ms: int, max_senders: int, now: float) -> Any:
    """The guard of a live receiver starting at `now` (seconds): it refuses every sender's
    frames stamped before it started, since it cannot know which of them it (or a previous
    run of it) already accepted. Zero I/O per frame and exact after a crash, where a
    persisted window would need an fsync per frame. Readers of stored frames (JetStream)
    verify old frames on purpose and take a plain ReplayGuard. docs/PROTOCOL.md, "Replay"."""
    return ReplayGuard(window, skew_ms, max_senders, max(int(now * 1000) - 1, 0))
