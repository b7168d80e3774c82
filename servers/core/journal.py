"""EventJournal: what every server saw, bounded in memory, readable while it grows.

Each event carries a sequence number (``id``), a wall-clock time, the server name, the
peer address, a kind (``connect``, ``command``, ``auth``, ``message``, ``file``...) and
free-form details. Readers filter by server, kind and ``since`` (an event id), and can
block until a matching event arrives, which is how tests wait without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


# Not frozen: a frozen dataclass sets each field through object.__setattr__, 1.45 us per
# event against 0.47 here, and every command of every session records one or two.
# Nothing changes an event once recorded.
@dataclass(slots=True)
class Event:
    id: int
    time: float
    server: str
    kind: str
    peer: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class EventJournal:
    """Thread-safe ring buffer of :class:`Event`; the oldest are dropped past ``size``."""

    def __init__(self, size: int = 10_000):
        self._events: deque[Event] = deque(maxlen=size)
        self._next_id = 1
        # record() runs for every command of every session: it takes the lock itself
        # (the Condition's __enter__ is a Python call more), wakes waiters only when
        # wait_for has some, and reads an observer tuple that (un)subscribing replaces.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._waiting = 0  # threads inside wait_for
        self._observers: tuple[Callable[[Event], None], ...] = ()

    def record(self, server: str, kind: str, peer: str = "", **details: Any) -> Event:
        with self._lock:
            event = Event(self._next_id, time.time(), server, kind, peer, details)
            self._next_id += 1
            self._events.append(event)
            if self._waiting:
                self._changed.notify_all()
            observers = self._observers
        for observer in observers:
            observer(event)
        return event

    def subscribe(self, observer: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``observer(event)`` for every new event; returns the unsubscribe function."""
        with self._lock:
            self._observers = (*self._observers, observer)
        return lambda: self._unsubscribe(observer)

    def _unsubscribe(self, observer: Callable[[Event], None]) -> None:
        with self._lock:
            if observer in self._observers:
                observers = list(self._observers)
                observers.remove(observer)
                self._observers = tuple(observers)

    def events(
        self,
        server: str | None = None,
        kind: str | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> list[Event]:
        """Matching events, oldest first; ``limit`` keeps the newest ones."""
        with self._changed:
            found = [e for e in self._events if _matches(e, server, kind, since)]
        return found[-limit:] if limit else found

    def clear(self) -> None:
        with self._changed:
            self._events.clear()

    @property
    def last_id(self) -> int:
        with self._changed:
            return self._next_id - 1

    def wait_for(
        self,
        predicate: Callable[[Event], bool] = lambda event: True,
        timeout: float = 30.0,
        since: int = 0,
        server: str | None = None,
        kind: str | None = None,
    ) -> Event:
        """Block until an event after ``since`` matches; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self._events:
                    if _matches(event, server, kind, since) and predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching event within {timeout}s")
                self._waiting += 1
                try:
                    self._changed.wait(remaining)
                finally:
                    self._waiting -= 1


def _matches(event: Event, server: str | None, kind: str | None, since: int) -> bool:
    return (
        event.id > since
        and (server is None or event.server == server)
        and (kind is None or event.kind == kind)
    )


def summarize(events: Iterable[Event]) -> list[dict[str, Any]]:
    return [event.as_json() for event in events]
