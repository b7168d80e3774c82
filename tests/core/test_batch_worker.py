"""BatchWorker (servers/core/batch_worker.py): what is submitted while the threads are
busy is processed as one batch, and every outcome reaches its waiter on the loop thread.

A real asyncio loop runs in a thread of its own; ``process`` blocks on an Event where a
test needs the workers busy, so batch boundaries are deterministic.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from servers.core.batch_worker import BatchWorker

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(10)
    running.close()


class Recorder:
    """``process`` for the worker: records each batch, may hold the first one."""

    def __init__(self, outcome: Callable[[Any], Any] = lambda item: item * 10):
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.outcome = outcome

    def __call__(self, items: list[int]) -> list[Any]:
        self.batches.append(list(items))
        self.started.set()
        assert self.release.wait(10)
        return [self.outcome(item) for item in items]


def submit_all(worker: BatchWorker[int, Any], loop: asyncio.AbstractEventLoop, items: list[int]) -> list[Any]:
    """Submit from the loop thread, as the servers do; return the outcomes and the
    threads each ``done`` ran on."""

    async def run() -> list[Any]:
        futures = []
        for item in items:
            future = loop.create_future()

            def done(outcome: Any, future: asyncio.Future[Any] = future) -> None:
                future.set_result((outcome, threading.current_thread().name))

            worker.submit(item, done)
            futures.append(future)
        return list(await asyncio.gather(*futures))

    return asyncio.run_coroutine_threadsafe(run(), loop).result(20)


def test_items_submitted_while_busy_make_one_batch(loop: asyncio.AbstractEventLoop) -> None:
    process = Recorder()
    process.release.clear()
    worker: BatchWorker[int, Any] = BatchWorker(process, loop.call_soon_threadsafe, threads=1, name="t")
    first = threading.Thread(target=submit_all, args=(worker, loop, [1]))
    first.start()
    assert process.started.wait(10)
    # The only thread holds batch [1]; these six wait for it, then go together.
    rest = threading.Thread(target=lambda: results.extend(submit_all(worker, loop, [2, 3, 4, 5, 6, 7])))
    results: list[Any] = []
    rest.start()
    while not len(worker._pending) == 6:  # noqa: SIM201 - polled until the loop queued them
        threading.Event().wait(0.001)
    process.release.set()
    first.join(10)
    rest.join(10)
    assert process.batches == [[1], [2, 3, 4, 5, 6, 7]]
    assert [outcome for outcome, _ in results] == [20, 30, 40, 50, 60, 70]
    loop_thread = {name for _, name in results}
    assert len(loop_thread) == 1 and not loop_thread.pop().startswith("t-")  # done ran on the loop


def test_a_raising_process_fails_every_item_of_its_batch(loop: asyncio.AbstractEventLoop) -> None:
    def process(items: list[int]) -> list[int]:
        raise OSError("disk gone")

    worker: BatchWorker[int, Any] = BatchWorker(process, loop.call_soon_threadsafe, threads=2, name="t")
    outcomes = [outcome for outcome, _ in submit_all(worker, loop, [1, 2, 3])]
    assert all(isinstance(outcome, OSError) and str(outcome) == "disk gone" for outcome in outcomes)


def test_per_item_errors_are_outcomes_and_the_rest_succeed(loop: asyncio.AbstractEventLoop) -> None:
    worker: BatchWorker[int, Any] = BatchWorker(
        Recorder(lambda item: ValueError(item) if item == 2 else item), loop.call_soon_threadsafe, threads=1, name="t"
    )
    outcomes = [outcome for outcome, _ in submit_all(worker, loop, [1, 2, 3])]
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], ValueError)


def test_a_miscounted_batch_is_an_error_for_each_item(loop: asyncio.AbstractEventLoop) -> None:
    # Twice as many outcomes as items, whatever the batch turns out to be.
    worker: BatchWorker[int, Any] = BatchWorker(lambda items: items + items, loop.call_soon_threadsafe, 1, "t")
    outcomes = [outcome for outcome, _ in submit_all(worker, loop, [1, 2])]
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)


def test_threads_start_on_demand_up_to_the_limit(loop: asyncio.AbstractEventLoop) -> None:
    process = Recorder()
    worker: BatchWorker[int, Any] = BatchWorker(process, loop.call_soon_threadsafe, threads=2, name="lazy-worker")
    named = lambda: [t for t in threading.enumerate() if t.name.startswith("lazy-worker-")]  # noqa: E731
    assert named() == []
    for _ in range(5):
        submit_all(worker, loop, [1, 2, 3])
    assert 1 <= len(named()) <= 2
    worker.close()
    for thread in named():
        thread.join(10)
    assert named() == []


def test_close_still_processes_what_was_submitted(loop: asyncio.AbstractEventLoop) -> None:
    process = Recorder()
    process.release.clear()
    worker: BatchWorker[int, Any] = BatchWorker(process, loop.call_soon_threadsafe, threads=1, name="t")
    results: list[Any] = []
    sender = threading.Thread(target=lambda: results.extend(submit_all(worker, loop, [1, 2])))
    sender.start()
    assert process.started.wait(10)
    worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        worker.submit(3, lambda outcome: None)
    process.release.set()
    sender.join(10)
    assert [outcome for outcome, _ in results] == [10, 20]
