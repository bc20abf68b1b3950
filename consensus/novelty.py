"""A bounded memory of recent proposals, so a flapping proposal loses attention.

Each key (action, resource) keeps one exponentially decaying counter: every observation adds
1, and the sum halves every `half_life_s`. The counter is the "repeats" input of the novelty
score. Memory is bounded by `max_keys` (least recently observed keys are forgotten first),
never by the number of proposals.
"""

from __future__ import annotations

from collections import OrderedDict

import consensus._validate as check

__all__ = ["NoveltyTracker"]

_Key = tuple[str, str | None]


class NoveltyTracker:
    """Decayed counts of earlier proposals per (action, resource). Not thread-safe."""

    def __init__(self, half_life_s: float = 600.0, max_keys: int = 1024) -> None:
        self.half_life_s = check.positive("half_life_s", half_life_s)
        self.max_keys = check.integer("max_keys", max_keys, 1, 2**31)
        # key -> (decayed count as of last_ms, last_ms); ordered by most recent observation.
        self._counters: OrderedDict[_Key, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counters)

    def repeats(self, action: str, resource: str | None, now_ms: int) -> float:
        """The decayed count of earlier observations of this key, as of `now_ms`."""
        entry = self._counters.get((action, resource))
        if entry is None:
            return 0.0
        count, last_ms = entry
        return count * self._decay(now_ms - last_ms)

    def observe(self, action: str, resource: str | None, at_ms: int) -> float:
        """Record one proposal at `at_ms`; return its repeats count from before this one.

        Observations may arrive out of order: an older one adds its already decayed weight.
        """
        key = (action, resource)
        before = self.repeats(action, resource, at_ms)
        entry = self._counters.get(key)
        if entry is None:
            self._counters[key] = (1.0, at_ms)
        elif at_ms >= entry[1]:
            self._counters[key] = (before + 1.0, at_ms)
        else:
            count, last_ms = entry
            self._counters[key] = (count + self._decay(last_ms - at_ms), last_ms)
        self._counters.move_to_end(key)
        while len(self._counters) > self.max_keys:
            self._counters.popitem(last=False)
        return before

    def _decay(self, elapsed_ms: int) -> float:
        """The factor 2^(-elapsed / half-life); never above 1 (a clock going back is no age)."""
        return 2.0 ** (-max(0, elapsed_ms) / 1000.0 / self.half_life_s)
