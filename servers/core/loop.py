"""EventLoop: one asyncio loop in a background thread, with Twisted running on it.

Why one loop: Twisted's reactor is process-global and cannot be restarted, while
aiosmtpd and asyncssh are asyncio libraries. Installing Twisted's asyncio reactor
puts all of them on the same loop, so an SMTP delivery can wake an IMAP IDLE client
with a plain function call, and the test process or CLI thread stays free to act as
a client. pyftpdlib brings its own loop and runs in a thread of its own.

Rule: code that touches a protocol object runs on the loop thread; everything else
goes through :meth:`EventLoop.call`, which blocks until the result is ready.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _install_reactor() -> asyncio.AbstractEventLoop:
    import sys

    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor

        running_loop = getattr(reactor, "_asyncioEventloop", None)
        if running_loop is None:
            raise RuntimeError(
                "refservers needs Twisted's asyncio reactor, but another reactor was "
                "installed first: import servers before twisted.internet.reactor"
            )
        return running_loop
    from twisted.internet import asyncioreactor

    loop = asyncio.new_event_loop()
    asyncioreactor.install(loop)
    return loop


class EventLoop:
    """The process's one event loop thread. Use :meth:`shared`; there is only one."""

    _shared: EventLoop | None = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> EventLoop:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls(_install_reactor())
            return cls._shared

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    def _ensure_running(self) -> None:
        if self._thread is not None:
            return
        with self._shared_lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="refservers-loop", daemon=True)
            self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        # Process signals belong to the main thread (the CLI's StopSignals): blocked here,
        # and so in every thread this one starts, the kernel hands them to a thread whose
        # Python handler can run at once.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        reactor = twisted_reactor()
        asyncio.set_event_loop(self.loop)
        reactor.callWhenRunning(self._started.set)
        reactor.run(installSignalHandlers=False)

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, function: Callable[..., Any], *args: Any, timeout: float | None = 30.0) -> Any:
        """Run ``function(*args)`` on the loop thread and return its result.

        A coroutine result is awaited and a Twisted Deferred is waited for, so callers
        get plain values (or the exception) either way.
        """
        if self.in_loop_thread:
            raise RuntimeError("EventLoop.call from the loop thread would deadlock")
        self._ensure_running()
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                result = function(*args)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                future.set_exception(error)
                return
            _settle(result, future)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def run_coroutine(self, coroutine: Any, timeout: float | None = 30.0) -> Any:
        """Await ``coroutine`` on the loop and return its result."""
        self._ensure_running()
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Stop the reactor (its shutdown triggers stop Twisted's thread pool) and join the
        loop thread. Only for a process that is exiting: the reactor cannot restart.
        Returns whether the thread ended in time."""
        thread = self._thread
        if thread is None:
            return True
        self.loop.call_soon_threadsafe(twisted_reactor().stop)
        thread.join(timeout)
        return not thread.is_alive()

    def call_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Schedule ``function(*args)`` on the loop without waiting (thread-safe)."""
        self._ensure_running()
        self.loop.call_soon_threadsafe(function, *args)


def twisted_reactor() -> Any:
    """The global Twisted reactor, typed loosely (its stubs describe interfaces, not the object)."""
    from twisted.internet import reactor

    return reactor


def _settle(result: Any, future: concurrent.futures.Future[Any]) -> None:
    from twisted.internet.defer import Deferred

    if isinstance(result, Deferred):
        result.addCallbacks(future.set_result, lambda failure: future.set_exception(failure.value))
    elif inspect.isawaitable(result):
        task = asyncio.ensure_future(result)

        def done(task: asyncio.Future[Any]) -> None:
            if task.cancelled():
                future.cancel()
            elif task.exception() is not None:
                future.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                future.set_result(task.result())

        task.add_done_callback(done)
    else:
        future.set_result(result)
