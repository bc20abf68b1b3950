"""Anti-replay as IPsec does it (RFC 4303 section 3.4.3, RFC 6479).

Each sender numbers its frames within an epoch (its start time). The receiver keeps, per
sender, the highest sequence number seen and a bitmap of the `window` numbers below it.
`check` is the cheap pre-MAC test; `commit` moves the window and must only be called
after the MAC verified, so forged frames cannot advance it. Memory is bounded by the
window size times the number of senders tracked (LRU), never by traffic volume.
"""

from __future__ import annotations

from collections import OrderedDict

from amcp.envelope import Reason

__all__ = ["ReplayGuard", "ReplayWindow"]


class ReplayWindow:
    """The sliding bitmap of one sender epoch. Bit i set means seq `top - i` was seen."""

    __slots__ = ("bitmap", "last_ts", "top", "window")

    def __init__(self, window: int, seq: int, ts_ms: int) -> None:
        self.window = window
        self.top = seq
        self.bitmap = 1
        self.last_ts = ts_ms

    def check(self, seq: int) -> str | None:
        """None if `seq` is acceptable, else the rejection reason (no state change)."""
        if seq > self.top:
            return None
        diff = self.top - seq
        if diff >= self.window or (self.bitmap >> diff) & 1:
            return Reason.REPLAY
        return None

    def commit(self, seq: int, ts_ms: int) -> None:
        if seq > self.top:
            shift = seq - self.top
            self.bitmap = ((self.bitmap << shift) | 1) & ((1 << self.window) - 1)
            self.top = seq
        else:
            self.bitmap |= 1 << (self.top - seq)
        if ts_ms > self.last_ts:
            self.last_ts = ts_ms


class ReplayGuard:
    """Per-sender windows with a bounded LRU table and a timestamp skew check.

    When a sender is evicted, its newest timestamp raises `evicted_floor_ms`: a sender the
    table no longer tracks is only accepted with a timestamp above that floor, so evicting
    a sender never reopens the door to replays of its old frames.
    """

    def __init__(self, window: int = 1024, skew_ms: int = 30_000, max_senders: int = 4096):
        if window < 32 or max_senders < 1 or skew_ms < 0:
            raise ValueError("window >= 32, max_senders >= 1 and skew_ms >= 0 are required")
        self.window = window
        self.skew_ms = skew_ms
        self.max_senders = max_senders
        self.evicted_floor_ms = 0
        self._senders: OrderedDict[str, tuple[int, ReplayWindow]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._senders)

    def check(self, sender: str, epoch: int, seq: int, ts_ms: int, now_ms: int) -> str | None:
        """Pre-MAC test: None if the frame may be verified, else a rejection reason."""
        if ts_ms > now_ms + self.skew_ms or ts_ms < now_ms - self.skew_ms:
            return Reason.STALE
        entry = self._senders.get(sender)
        if entry is None:
            return Reason.STALE if ts_ms <= self.evicted_floor_ms else None
        tracked_epoch, win = entry
        if epoch < tracked_epoch:
            return Reason.STALE  # the sender restarted since; its old epoch is closed
        if epoch > tracked_epoch:
            return None
        return win.check(seq)

    def commit(self, sender: str, epoch: int, seq: int, ts_ms: int) -> None:
        """Record a verified frame (call only after the MAC checked out)."""
        senders = self._senders
        entry = senders.get(sender)
        if entry is None or epoch > entry[0]:
            senders[sender] = (epoch, ReplayWindow(self.window, seq, ts_ms))
            senders.move_to_end(sender)
            while len(senders) > self.max_senders:
                _, (_, old) = senders.popitem(last=False)
                self.evicted_floor_ms = max(self.evicted_floor_ms, old.last_ts)
            return
        entry[1].commit(seq, ts_ms)
        senders.move_to_end(sender)
