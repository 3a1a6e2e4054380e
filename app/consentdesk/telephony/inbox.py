"""A bounded hand-over of call events from a connector thread to the GUI thread.

A Qt queued signal per event would let a flooding PBX grow the GUI's event
queue without limit. Here the connector puts events into a fixed-size buffer
and blocks while it is full, so it stops reading its socket and TCP pushes the
flood back to the sender; the GUI is woken once per batch, not once per event.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_CAPACITY = 1024


class EventInbox(Generic[T]):
    """Bounded FIFO between one producer thread and one consumer.

    ``on_ready`` runs on the producer's thread when the inbox goes from empty to
    non-empty: the consumer should then :meth:`take` until it gets nothing.
    """

    def __init__(self, *, on_ready: Callable[[], None], capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._on_ready = on_ready
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.blocked = 0  # puts that had to wait for room (back-pressure applied)
        self.high_water = 0

    def put(self, item: T) -> bool:
        """Add *item*, waiting while the inbox is full; False once closed."""
        with self._cond:
            if len(self._items) >= self.capacity and not self._closed:
                self.blocked += 1
                while len(self._items) >= self.capacity and not self._closed:
                    self._cond.wait()
            if self._closed:
                return False
            was_empty = not self._items
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
        if was_empty:
            self._on_ready()
        return True

    def take(self, limit: int) -> list[T]:
        """Up to *limit* items, oldest first (never waits)."""
        with self._cond:
            count = min(limit, len(self._items))
            out = [self._items.popleft() for _ in range(count)]
            if out:
                self._cond.notify_all()
        return out

    def close(self) -> None:
        """Refuse further items and release a producer waiting for room."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
