"""Toxics: Toxiproxy's faults as stages of a one-way pipe, plus the HTTP-aware ones.

A proxied connection has two directions, each a :class:`Pipe`: ``upstream`` carries
what the client sends towards the server, ``downstream`` what the server sends back
(Toxiproxy's names and default). A pipe is a chain of stages ending at a sink that
writes to a transport; each toxic is one stage. The stages follow Toxiproxy's
semantics (https://github.com/Shopify/toxiproxy#toxics):

- ``latency``: every chunk waits ``latency`` ms, plus or minus up to ``jitter`` ms;
  order is kept.
- ``bandwidth``: at most ``rate`` KB/s (1 KB = 1000 bytes); a chunk is delivered only
  once its transfer time has passed, in pieces of 100 ms worth of data (rate 0: no
  limit, as in Toxiproxy).
- ``timeout``: data is dropped; after ``timeout`` ms the connection is closed
  (0: held until the client closes).
- ``reset_peer``: the first data on the stream is dropped and, ``timeout`` ms later
  (0: at once), the receiving side gets a TCP RST (Twisted's abortConnection closes
  with SO_LINGER 0). Toxiproxy's ResetToxic also waits for data before it counts.
- ``slow_close``: the end of the stream (the close) is passed on ``delay`` ms late.
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

A TCP listener's named toxics (the Toxiproxy API's, see ``live.py``) are different:
they are stages added to, changed in and removed from the pipes of connections that
are already open (:meth:`Pipe.attach`, :meth:`Pipe.swap`, :meth:`Pipe.detach`), after
the drawn ones, in the order they were added, as Toxiproxy's ToxicCollection does.
Stages therefore read their ``outlet`` when they release data, never earlier.
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


class NamedStage(Protocol):
    """What a pipe needs of a named toxic (``live.NamedToxic``) to build its stage."""

    name: str
    type: str
    toxicity: float
    attributes: dict[str, Any]

    @property
    def direction(self) -> str: ...


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

    def flush(self) -> None:
        """The toxic is being removed: pass on at once what it still holds (Toxiproxy
        drops nothing on removal), then stop its timers."""
        self.cancel()

    def carry_from(self, previous: Stage) -> None:
        """Take over the per-connection state of the stage this one replaces (an update)."""


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

    def emit(self, data: bytes) -> None:
        self.outlet.write(data)  # the outlet now: live toxics may have been added after us

    def finish(self, how: str) -> None:
        self.at(self.now(), partial(self._emit_finish, how))

    def _emit_finish(self, how: str) -> None:
        self.outlet.finish(how)

    def cancel(self) -> None:
        self._queue.clear()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def flush(self) -> None:
        queued, self._queue = self._queue, deque()
        self.cancel()
        for _, action in queued:
            action()


class Latency(_Scheduled):
    def write(self, data: bytes) -> None:
        jitter = self.params["jitter"]
        delay_ms = max(0.0, self.params["latency"] + self.context.random.uniform(-jitter, jitter))
        self.at(self.now() + delay_ms / 1000, partial(self.emit, data))


class Bandwidth(_Scheduled):
    def write(self, data: bytes) -> None:
        if self.params["rate"] <= 0:  # Toxiproxy: no limit
            self.at(self.now(), partial(self.emit, data))
            return
        rate = self.params["rate"] * 1000  # bytes per second
        piece = max(1, int(rate / 10))
        for start in range(0, len(data), piece):
            chunk = data[start : start + piece]
            sent_at = max(self.now(), self.last_due) + len(chunk) / rate
            self.at(sent_at, partial(self.emit, chunk))


class Slicer(_Scheduled):
    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        self._previous: float | None = None

    def write(self, data: bytes) -> None:
        # Toxiproxy recurses forever on average_size 0; a slice is at least one byte here.
        average, variation = max(1, self.params["average_size"]), max(0, self.params["size_variation"])
        delay = max(0, self.params["delay"]) / 1_000_000
        start = 0
        while start < len(data):
            size = max(1, average + self.context.random.randint(-variation, variation))
            chunk, start = data[start : start + size], start + size
            due = self.now() if self._previous is None else max(self.now(), self._previous + delay)
            self._previous = due
            self.at(due, partial(self.emit, chunk))


class Timeout(Stage):
    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        timeout = self.params["timeout"]
        self._timer = context.clock.callLater(timeout / 1000, context.link.close) if timeout > 0 else None

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
    """Toxiproxy's ResetToxic: waits for the first data on its stream, drops it, and
    ``timeout`` ms later resets the connection; nothing passes after that data."""

    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        self._timer: Any = None
        self._triggered = False

    def write(self, data: bytes) -> None:
        if not self._triggered:
            self._triggered = True
            delay = max(0, self.params["timeout"]) / 1000
            self._timer = self.context.clock.callLater(delay, self.context.link.reset, self.context.stream)

    def finish(self, how: str) -> None:
        # The end of the stream counts as its first data (Go reads nil from the closed
        # channel), and a close must not reach the peer before the reset does.
        self.write(b"")

    def cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()


class SlowClose(Stage):
    """Toxiproxy's SlowCloseToxic: data passes; the end of the stream waits ``delay`` ms."""

    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        self._timer: Any = None
        self._pending: str | None = None

    def finish(self, how: str) -> None:
        if self._pending is None:
            self._pending = how
            self._timer = self.context.clock.callLater(max(0, self.params["delay"]) / 1000, self._close)

    def _close(self) -> None:
        self._timer = None
        if self._pending is not None:
            self.outlet.finish(self._pending)

    def cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def flush(self) -> None:
        self.cancel()
        self._close()


class LimitData(Stage):
    def __init__(self, outlet: Outlet, params: Mapping[str, Any], context: ToxicContext):
        super().__init__(outlet, params, context)
        self.sent = 0  # Toxiproxy keeps this count across updates of the toxic
        self._done = False

    def carry_from(self, previous: Stage) -> None:
        if isinstance(previous, LimitData):
            self.sent = previous.sent

    def write(self, data: bytes) -> None:
        if self._done:
            return
        part = data[: max(0, int(self.params["bytes"]) - self.sent)]
        self.sent += len(part)
        if part:
            self.outlet.write(part)
        if self.sent >= self.params["bytes"]:
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
    "slow_close": FaultAction(
        "pass data, but delay the close by delay ms",
        (Param("delay", NUMBER, 0, 3_600_000, default=0, help="milliseconds"), _stream("downstream")),
    ),
    "bandwidth": FaultAction(
        "limit throughput to rate KB/s (0: no limit, as in Toxiproxy)",
        (Param("rate", NUMBER, 0, default=100, help="KB/s (1 KB = 1000 bytes)"), _stream("downstream")),
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
    "slow_close": ToxicKind(SlowClose),
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
    # Only the kinds that have rules are checked: nine checks (a lock each) for a proxy
    # without rules were a measurable part of a proxied request's CPU.
    present = {rule.action for rule in faults.rules(server)}
    for kind in kinds:
        if kind not in present:
            continue
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
    """One direction of a proxied connection: ``write`` in, toxics, then the sink.

    The drawn toxics (fault rules) come first, in table order; then the listener's
    named toxics, in the order they were added, which can change while data flows.
    """

    def __init__(
        self,
        toxics: Iterable[ActiveToxic],
        stream: str,
        link: Link,
        clock: Any,
        sink: Sink,
        named: Iterable[NamedStage] = (),
    ):
        self.sink = sink
        self.stream = stream
        self.link = link
        self.clock = clock
        self.stages: list[Stage] = []
        self.named: dict[str, Stage] = {}
        for toxic in toxics:
            stage_class = TOXICS[toxic.name].stage
            if toxic.stream == stream and stage_class is not None:
                seed = toxic.rule.seed
                rng = random.Random(seed) if seed is not None else random.Random()
                self.stages.append(stage_class(sink, toxic.params, ToxicContext(clock, link, stream, rng)))
        for named_toxic in named:
            if named_toxic.direction == stream:
                stage = self._named_stage(named_toxic)
                self.named[named_toxic.name] = stage
                self.stages.append(stage)
        self._relink()

    def _relink(self) -> None:
        outlet: Outlet = self.sink
        for stage in reversed(self.stages):
            stage.outlet = outlet
            outlet = stage
        self._head = outlet

    def _named_stage(self, toxic: NamedStage) -> Stage:
        """The stage of a named toxic for this pipe; toxicity is rolled here, once per
        pipe (Toxiproxy rolls once per link each time the toxic starts running)."""
        rng = random.Random()
        context = ToxicContext(self.clock, self.link, self.stream, rng)
        stage_class = TOXICS[toxic.type].stage
        if stage_class is None or rng.random() >= toxic.toxicity:
            return Stage(self.sink, toxic.attributes, context)  # a pass-through
        return stage_class(self.sink, toxic.attributes, context)

    def attach(self, toxic: NamedStage) -> None:
        """A named toxic was added: it becomes the last stage, before the sink."""
        stage = self._named_stage(toxic)
        self.named[toxic.name] = stage
        self.stages.append(stage)
        self._relink()

    def swap(self, toxic: NamedStage) -> None:
        """A named toxic was updated: a new stage with the new attributes and a new roll
        of its toxicity takes its place; what the old one held goes on at once."""
        old = self.named.get(toxic.name)
        if old is None:
            return
        stage = self._named_stage(toxic)
        stage.carry_from(old)
        self.stages[self.stages.index(old)] = stage
        self.named[toxic.name] = stage
        self._relink()
        old.flush()

    def detach(self, name: str) -> None:
        """A named toxic was removed: what it held goes on at once, then it is gone."""
        old = self.named.pop(name, None)
        if old is None:
            return
        self.stages.remove(old)
        self._relink()
        old.flush()

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
