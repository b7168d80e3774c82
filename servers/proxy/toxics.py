"""Toxics: Toxiproxy's faults as stages of a one-way pipe, plus the HTTP-aware ones.

A proxied connection has two directions, each a :class:`Pipe`: ``upstream`` carries
what the client sends towards the server, ``downstream`` what the server sends back
(Toxiproxy's names and default). A pipe is a chain of stages ending at a sink that
writes to a transport; each toxic is one stage. The stages follow Toxiproxy's
semantics (https://github.com/Shopify/toxiproxy#toxics):

- ``latency``: every chunk waits ``latency`` ms, plus or minus up to ``jitter`` ms;
  order is kept.
- ``bandwidth``: at most ``rate`` KB/s (1 KB = 1000 bytes); a chunk is delivered only
  once its transfer time has passed, in pieces of 100 ms worth of data.
- ``timeout``: data is dropped; after ``timeout`` ms the connection is closed
  (0: held until the client closes).
- ``reset_peer``: after ``timeout`` ms (0: at once) the receiving side of the stream
  gets a TCP RST (Twisted's abortConnection closes with SO_LINGER 0).
- ``slicer``: chunks are cut into slices of ``average_size`` bytes, plus or minus up
  to ``size_variation``, with ``delay`` microseconds between slices.
- ``limit_data``: after ``bytes`` bytes the connection is closed.

The HTTP-aware toxics only make sense to the forward proxy, which carries them out:
``http_status`` answers with a fixed status and body without contacting the upstream,
``add_headers`` adds headers to the response (or to the request, stream upstream).

Rules come from the shared FaultBook (server "proxy", action = toxic name); a
connection or request draws its toxics once, when it starts, so removing a rule
affects only what starts afterwards. One rule per toxic kind applies at a time (the
first that fires), in the order of :data:`TOXICS`.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from ..core.faults import INTEGER, NUMBER, STRING, STRING_TABLE, FaultAction, FaultBook, FaultRule, Param

STREAMS = ("upstream", "downstream")

# How a pipe's stream ends: "eof" when its source closed, "end" when one HTTP message
# is complete and the connection goes on (keep-alive), "close" when a toxic
# (limit_data) wants the whole connection closed once what it let through is delivered.
EOF, END, CLOSE = "eof", "end", "close"


class Link(Protocol):
    """The proxied connection a pipe belongs to; toxics call it to break the connection."""

    def close(self) -> None:
        """Close both sides, after flushing what was already written."""

    def reset(self, stream: str) -> None:
        """Send a TCP RST to the side that receives ``stream``; close the other side."""


class Outlet(Protocol):
    def write(self, data: bytes) -> None: ...

    def finish(self, how: str) -> None: ...


class Stage:
    """One step of a pipe: passes data and the end of the stream on to ``outlet``."""

    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        self.outlet = outlet
        self.params = params
        self.context = context

    def write(self, data: bytes) -> None:
        self.outlet.write(data)

    def finish(self, how: str) -> None:
        self.outlet.finish(how)

    def cancel(self) -> None:
        """Drop pending timers: the connection is gone."""


@dataclass
class ToxicContext:
    clock: Any  # the Twisted reactor: seconds() and callLater()
    link: Link
    stream: str
    random: random.Random


class _Scheduled(Stage):
    """A stage that releases its output later, strictly in order, from one timer.

    Twisted's callLater does not promise an order for calls due at the same moment,
    so the queue is ours and only its head has a timer.
    """

    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        self._queue: deque[tuple[float, Callable[[], None]]] = deque()
        self._timer: Any = None
        self.last_due = 0.0

    def now(self) -> float:
        return float(self.context.clock.seconds())

    def at(self, due: float, action: Callable[[], None]) -> None:
        due = max(due, self.last_due)
        self.last_due = due
        if not self._queue and due <= self.now():
            action()
            return
        self._queue.append((due, action))
        if self._timer is None:
            self._arm()

    def _arm(self) -> None:
        delay = max(0.0, self._queue[0][0] - self.now())
        self._timer = self.context.clock.callLater(delay, self._release)

    def _release(self) -> None:
        self._timer = None
        # A small tolerance: the reactor's timer clock and seconds() may differ slightly.
        now = self.now() + 0.0005
        while self._queue and self._queue[0][0] <= now:
            _, action = self._queue.popleft()
            action()
        if self._queue and self._timer is None:
            self._arm()

    def finish(self, how: str) -> None:
        self.at(self.now(), partial(self.outlet.finish, how))

    def cancel(self) -> None:
        self._queue.clear()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


class Latency(_Scheduled):
    def write(self, data: bytes) -> None:
        jitter = self.params["jitter"]
        delay_ms = max(0.0, self.params["latency"] + self.context.random.uniform(-jitter, jitter))
        self.at(self.now() + delay_ms / 1000, partial(self.outlet.write, data))


class Bandwidth(_Scheduled):
    def write(self, data: bytes) -> None:
        rate = self.params["rate"] * 1000  # bytes per second
        piece = max(1, int(rate / 10))
        for start in range(0, len(data), piece):
            chunk = data[start : start + piece]
            sent_at = max(self.now(), self.last_due) + len(chunk) / rate
            self.at(sent_at, partial(self.outlet.write, chunk))


class Slicer(_Scheduled):
    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        self._previous: float | None = None

    def write(self, data: bytes) -> None:
        average, variation = self.params["average_size"], self.params["size_variation"]
        delay = self.params["delay"] / 1_000_000
        start = 0
        while start < len(data):
            size = max(1, average + self.context.random.randint(-variation, variation))
            chunk, start = data[start : start + size], start + size
            due = self.now() if self._previous is None else max(self.now(), self._previous + delay)
            self._previous = due
            self.at(due, partial(self.outlet.write, chunk))


class Timeout(Stage):
    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        timeout = self.params["timeout"]
        self._timer = context.clock.callLater(timeout / 1000, context.link.close) if timeout else None

    def write(self, data: bytes) -> None:
        pass  # the point of the toxic: nothing gets through

    def finish(self, how: str) -> None:
        # The source side closed: "hold until closed" ends here for both sides. The end
        # of one HTTP response is not a close: the client keeps waiting for it.
        if how != END:
            self.context.link.close()

    def cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()


class ResetPeer(Stage):
    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        self._timer = context.clock.callLater(params["timeout"] / 1000, context.link.reset, context.stream)

    def cancel(self) -> None:
        if self._timer.active():
            self._timer.cancel()


class LimitData(Stage):
    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        self._left = int(params["bytes"])
        self._done = False

    def write(self, data: bytes) -> None:
        if self._done:
            return
        part = data[: self._left]
        self._left -= len(part)
        if part:
            self.outlet.write(part)
        if self._left <= 0:
            self._done = True
            self.outlet.finish(CLOSE)

    def finish(self, how: str) -> None:
        if not self._done:
            self._done = True
            self.outlet.finish(how)


# -- the table ------------------------------------------------------------------------


def _stream(default: str) -> Param:
    return Param("stream", STRING, choices=STREAMS, default=default, help="upstream (client to server) or downstream")


# The proxy's fault actions (Server.fault_actions): plain data, checked by the FaultBook
# when a rule is added, so a rule's params arrive here complete and valid.
TOXIC_ACTIONS: dict[str, FaultAction] = {
    "http_status": FaultAction(
        "answer with a fixed status and body, without contacting the upstream",
        (
            Param("status", INTEGER, 200, 599, default=503, help="the HTTP status"),
            Param("body", STRING, default="refservers proxy: fault injected\n", help="the response body"),
            Param("content_type", STRING, default="text/plain; charset=utf-8", help="its Content-Type"),
            _stream("downstream"),
        ),
    ),
    "add_headers": FaultAction(
        "add headers to the response (stream upstream: to the request)",
        (Param("headers", STRING_TABLE, default={}, help="header name -> value"), _stream("downstream")),
    ),
    "timeout": FaultAction(
        "drop all data, close after timeout ms (0: hold until the client closes)",
        (Param("timeout", NUMBER, 0, 3_600_000, default=0, help="milliseconds"), _stream("downstream")),
    ),
    "reset_peer": FaultAction(
        "TCP RST to the receiving side after timeout ms",
        (Param("timeout", NUMBER, 0, 3_600_000, default=0, help="milliseconds (0: at once)"), _stream("downstream")),
    ),
    "limit_data": FaultAction(
        "close the connection after this many bytes",
        (Param("bytes", INTEGER, 0, default=0, help="bytes let through"), _stream("downstream")),
    ),
    "slicer": FaultAction(
        "cut data into small slices with a delay between them",
        (
            Param("average_size", INTEGER, 1, default=64, help="slice size in bytes"),
            Param("size_variation", INTEGER, 0, default=0, below="average_size", help="plus or minus bytes"),
            Param("delay", INTEGER, 0, 60_000_000, default=0, help="microseconds between slices"),
            _stream("downstream"),
        ),
    ),
    "bandwidth": FaultAction(
        "limit throughput to rate KB/s",
        (Param("rate", NUMBER, 0.001, default=100, help="KB/s (1 KB = 1000 bytes)"), _stream("downstream")),
    ),
    "latency": FaultAction(
        "delay every chunk by latency ms, plus or minus jitter ms",
        (
            Param("latency", NUMBER, 0, 3_600_000, default=0, help="milliseconds"),
            Param("jitter", NUMBER, 0, 3_600_000, default=0, help="plus or minus milliseconds"),
            _stream("downstream"),
        ),
    ),
}


@dataclass(frozen=True)
class ToxicKind:
    """How a toxic is carried out: its stage (None: by the HTTP proxy itself)."""

    stage: type[Stage] | None
    http_only: bool = field(default=False)


# In the order toxics apply (see the module docstring); the same names as TOXIC_ACTIONS.
TOXICS: dict[str, ToxicKind] = {
    "http_status": ToxicKind(None, http_only=True),
    "add_headers": ToxicKind(None, http_only=True),
    "timeout": ToxicKind(Timeout),
    "reset_peer": ToxicKind(ResetPeer),
    "limit_data": ToxicKind(LimitData),
    "slicer": ToxicKind(Slicer),
    "bandwidth": ToxicKind(Bandwidth),
    "latency": ToxicKind(Latency),
}

BYTE_TOXICS = tuple(name for name, kind in TOXICS.items() if not kind.http_only)


@dataclass(frozen=True)
class ActiveToxic:
    """A rule that fired for one connection or request, with its params (checked, complete)."""

    rule: FaultRule
    params: dict[str, Any]

    @property
    def name(self) -> str:
        return self.rule.action

    @property
    def stream(self) -> str:
        return str(self.params["stream"])


def draw_toxics(faults: FaultBook, server: str, subject: str, peer: str, kinds: Iterable[str]) -> list[ActiveToxic]:
    """The toxics that fire now for ``subject``: at most one rule per kind, in table order."""
    drawn = []
    for kind in kinds:
        rule = faults.check(server, subject, peer, actions=(kind,))
        if rule is not None:
            drawn.append(ActiveToxic(rule, rule.params))
    return drawn


class Sink:
    """The end of a pipe: counts the bytes that really left, then hands them over."""

    def __init__(self, write: Callable[[bytes], None], finish: Callable[[str], None]):
        self._write = write
        self._finish = finish
        self.bytes = 0
        self.finished = False

    def write(self, data: bytes) -> None:
        if not self.finished:
            self.bytes += len(data)
            self._write(data)

    def finish(self, how: str) -> None:
        if not self.finished:
            self.finished = True
            self._finish(how)


class Pipe:
    """One direction of a proxied connection: ``write`` in, toxics, then the sink."""

    def __init__(self, toxics: Iterable[ActiveToxic], stream: str, link: Link, clock: Any, sink: Sink):
        self.sink = sink
        self.stages: list[Stage] = []
        outlet: Outlet = sink
        # Built back to front so the first toxic in table order sees the data first.
        for toxic in reversed([t for t in toxics if t.stream == stream and TOXICS[t.name].stage]):
            seed = toxic.rule.seed
            context = ToxicContext(clock, link, stream, random.Random(seed) if seed is not None else random.Random())
            stage_class = TOXICS[toxic.name].stage
            assert stage_class is not None
            stage = stage_class(outlet, toxic.params, context)
            self.stages.insert(0, stage)
            outlet = stage
        self._head = outlet

    @property
    def byte_count(self) -> int:
        """Bytes that left the pipe (after the toxics)."""
        return self.sink.bytes

    def write(self, data: bytes) -> None:
        if data:
            self._head.write(data)

    def finish(self, how: str = EOF) -> None:
        self._head.finish(how)

    def cancel(self) -> None:
        for stage in self.stages:
            stage.cancel()
