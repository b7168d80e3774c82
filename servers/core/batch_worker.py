"""BatchWorker: threads that do blocking work (fsync) for an event loop, a batch at a time.

Durable stores answer a client only after fsync, which must not run on the loop. A
thread pool with a thread per request (SMTP had 32) made every request a thread of its
own that took turns at the GIL with the loop around each of its system calls: at 20
parallel SMTP senders, 70 futex calls per message. Here a few threads each take
*everything* submitted while they were busy and hand it to one ``process`` call, which
can then share the expensive steps across the batch (one fsync of a directory for all
of its new files: group commit), and the loop hears about the whole batch in one wake-up.
A request waits at most for the batch in progress, as it waited for a free thread before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class BatchWorker(Generic[Item, Outcome]):
    """Runs ``process(items)`` on worker threads for items submitted from a loop.

    ``process`` returns one outcome per item, in order: a result, or the exception that
    item failed with (the others still count). ``call_in_loop(function, *args)`` must
    run ``function`` on the loop thread later (asyncio's ``call_soon_threadsafe``,
    Twisted's ``callFromThread``); every ``done`` callback runs there. Threads start on
    the first submit, so an unused worker costs none.
    """

    def __init__(
        self,
        process: Callable[[list[Item]], Sequence[Outcome | Exception]],
        call_in_loop: Callable[..., Any],
        threads: int,
        name: str,
    ):
        self._process = process
        self._call_in_loop = call_in_loop
        self._threads = threads
        self._name = name
        self._ready = threading.Condition()
        self._pending: list[tuple[Item, Callable[[Outcome | Exception], None]]] = []
        self._started = 0
        self._idle = 0
        self._closed = False

    def submit(self, item: Item, done: Callable[[Outcome | Exception], None]) -> None:
        """Queue ``item``; ``done(outcome)`` is called on the loop once it is processed."""
        with self._ready:
            if self._closed:
                raise RuntimeError(f"{self._name}: closed")
            self._pending.append((item, done))
            if self._idle:
                self._ready.notify()
            elif self._started < self._threads:
                self._started += 1
                threading.Thread(target=self._work, name=f"{self._name}-{self._started}", daemon=True).start()

    def close(self) -> None:
        """Stop taking items; what was submitted is still processed, then the threads end."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closed:
                    self._idle += 1
                    self._ready.wait()
                    self._idle -= 1
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            items = [item for item, _ in batch]
            try:
                outcomes = list(self._process(items))
                if len(outcomes) != len(items):
                    raise RuntimeError(f"{self._name}: {len(outcomes)} outcomes for {len(items)} items")
            except Exception as error:  # noqa: BLE001 - every waiter must hear, or it waits forever
                outcomes = [error] * len(items)
            self._call_in_loop(_settle, [done for _, done in batch], outcomes)


def _settle(callbacks: list[Callable[[Any], None]], outcomes: list[Any]) -> None:
    failed: Exception | None = None
    for done, outcome in zip(callbacks, outcomes, strict=True):
        try:
            done(outcome)
        except Exception as error:  # noqa: BLE001 - the rest of the batch is still told
            failed = failed or error
    if failed is not None:
        raise failed  # for the loop's exception handler to log
