"""Bounded per-key state (one RTO estimator or circuit breaker per destination).

Memory must not grow with the number of peers ever seen, so the least recently used key is
forgotten once `max_keys` is reached; a forgotten key starts afresh from its factory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["PerKey"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class PerKey(Generic[K, V]):
    """A mapping from key to state, created on first use, holding at most `max_keys` keys."""

    def __init__(self, factory: Callable[[], V], max_keys: int = 1024) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self._factory = factory
        self._max_keys = max_keys
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V:
        """The state of `key`, created if absent; marks the key as most recently used."""
        try:
            self._items.move_to_end(key)
            return self._items[key]
        except KeyError:
            if len(self._items) >= self._max_keys:
                self._items.popitem(last=False)
            value = self._items[key] = self._factory()
            return value

    def peek(self, key: K) -> V | None:
        """The state of `key` if it has one, without creating it or marking it used."""
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._items))
