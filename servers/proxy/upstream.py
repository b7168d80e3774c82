"""The upstream side of a proxied connection: a raw TCP client that reports to its owner.

Both the HTTP forward proxy and the plain TCP listeners open upstream connections the
same way, and the owner gets ``upstream_connected(protocol)``,
``upstream_failed(reason)``, ``upstream_data(bytes)`` and ``upstream_lost()``:

- the TCP listeners run on Twisted's transports: :func:`connect_upstream`, with
  :class:`UpstreamProtocol`;
- the HTTP forward proxy runs on asyncio's own transports (why: forward.py's
  docstring): :func:`open_upstream`, with :class:`StreamUpstream`.

Failure reasons (a Twisted Failure or an exception) are sorted into "refused" (502)
and "timeout" (504) by :func:`failure_kind`.

Flow control: :func:`couple` (Twisted) and :func:`couple_streams` (asyncio) make each
side's full write buffer pause reading from the other side, so a slow client does not
make the proxy buffer a whole download in memory.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any, Protocol

from twisted.internet import error as twisted_errors
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import ClientFactory
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ..core.loop import twisted_reactor


class UpstreamOwner(Protocol):
    def upstream_connected(self, upstream: Any) -> None: ...

    def upstream_failed(self, reason: Any) -> None: ...

    def upstream_data(self, data: bytes) -> None: ...

    def upstream_lost(self) -> None: ...


class UpstreamProtocol(TwistedProtocol):
    transport: Any  # Twisted types it as an interface; ours is a TCP connection

    def __init__(self, owner: UpstreamOwner):
        self.owner = owner
        self.connected_ = False

    def connectionMade(self) -> None:
        # Relayed bytes go out at once (no Nagle), as on the client side.
        self.transport.setTcpNoDelay(True)
        self.connected_ = True
        self.owner.upstream_connected(self)

    def dataReceived(self, data: bytes) -> None:
        self.owner.upstream_data(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.connected_ = False
        self.owner.upstream_lost()

    def close(self) -> None:
        if self.transport is not None and self.connected_:
            self.transport.loseConnection()

    def close_write(self) -> None:
        """Half-close: send FIN, keep reading the answer."""
        if self.transport is not None and self.connected_:
            self.transport.loseWriteConnection()

    def abort(self) -> None:
        """Close with a TCP RST (Twisted sets SO_LINGER 0 on abort)."""
        if self.transport is not None and self.connected_:
            self.transport.abortConnection()


class _UpstreamFactory(ClientFactory):
    noisy = False

    def __init__(self, owner: UpstreamOwner):
        self.owner = owner

    def buildProtocol(self, addr: Any) -> UpstreamProtocol:
        return UpstreamProtocol(self.owner)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.owner.upstream_failed(reason)


def connect_upstream(host: str, port: int, timeout: float, owner: UpstreamOwner) -> Any:
    """Start connecting; returns the connector (``stopConnecting()`` to give up)."""
    return twisted_reactor().connectTCP(host, port, _UpstreamFactory(owner), timeout=timeout or 30)


def failure_kind(reason: Failure | BaseException) -> str:
    """"timeout" for failures a gateway reports as 504, else "refused" (502)."""
    value = reason.value if isinstance(reason, Failure) else reason
    if isinstance(value, (twisted_errors.TimeoutError, TimeoutError)):
        return "timeout"
    return "refused"


def failure_text(reason: Failure | BaseException) -> str:
    value = reason.value if isinstance(reason, Failure) else reason
    if isinstance(value, (twisted_errors.DNSLookupError, socket.gaierror)):
        return "the host name did not resolve"
    if isinstance(value, (twisted_errors.ConnectionRefusedError, ConnectionRefusedError)):
        return "connection refused"
    if isinstance(value, (twisted_errors.TimeoutError, TimeoutError)):
        return "connection timed out"
    return str(value).strip() or type(value).__name__


@implementer(IPushProducer)
class ReadThrottle:
    """Registered on one transport: pauses reading ``source`` while that transport's
    write buffer is full, resumes when it drained."""

    def __init__(self, source: Any):
        self.source = source

    def pauseProducing(self) -> None:
        self.source.pauseProducing()

    def resumeProducing(self) -> None:
        self.source.resumeProducing()

    def stopProducing(self) -> None:
        pass  # one side closing is the proxy's decision about the other, not the buffer's


def couple(one: Any, other: Any) -> None:
    """Flow control both ways between two transports."""
    one.registerProducer(ReadThrottle(other), True)
    other.registerProducer(ReadThrottle(one), True)


def uncouple(one: Any, other: Any) -> None:
    """Undo :func:`couple`, leaving both sides reading."""
    for consumer, source in ((one, other), (other, one)):
        consumer.unregisterProducer()
        source.resumeProducing()


# -- on asyncio's transports (the HTTP forward proxy) ---------------------------------------


class FlowControlled(asyncio.Protocol):
    """An asyncio protocol whose full write buffer pauses reading ``throttled`` (the
    other side of the proxied connection, while :func:`couple_streams` holds)."""

    transport: Any = None  # asyncio's TCP transport, set in connection_made
    throttled: Any = None

    def pause_writing(self) -> None:
        if self.throttled is not None:
            self.throttled.pause_reading()

    def resume_writing(self) -> None:
        if self.throttled is not None:
            self.throttled.resume_reading()


def couple_streams(one: FlowControlled, other: FlowControlled) -> None:
    """Flow control both ways between two asyncio protocols' transports."""
    one.throttled, other.throttled = other.transport, one.transport


def uncouple_streams(one: FlowControlled, other: FlowControlled) -> None:
    """Undo :func:`couple_streams`, leaving both sides reading."""
    for protocol in (one, other):
        protocol.throttled = None
        if protocol.transport is not None:
            protocol.transport.resume_reading()  # a no-op unless paused (or closing)


def abort_with_reset(transport: Any) -> None:
    """Close an asyncio TCP transport with a TCP RST, as Twisted's abortConnection does
    (SO_LINGER 0): asyncio's abort() alone sends a plain FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # already gone: nothing left to reset
    transport.abort()


class StreamUpstream(FlowControlled):
    """An upstream connection on asyncio's transport (asyncio sets TCP_NODELAY itself)."""

    def __init__(self, owner: UpstreamOwner):
        self.owner = owner
        self.connected_ = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.connected_ = True
        self.owner.upstream_connected(self)

    def data_received(self, data: bytes) -> None:
        self.owner.upstream_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connected_ = False
        self.owner.upstream_lost()

    def close(self) -> None:
        if self.transport is not None and self.connected_:
            self.transport.close()

    def close_write(self) -> None:
        """Half-close: send FIN, keep reading the answer."""
        if self.transport is not None and self.connected_ and self.transport.can_write_eof():
            self.transport.write_eof()

    def abort(self) -> None:
        """Close with a TCP RST."""
        if self.transport is not None and self.connected_:
            abort_with_reset(self.transport)


def open_upstream(host: str, port: int, timeout: float, owner: UpstreamOwner) -> asyncio.Task[None]:
    """Start connecting on the running loop; ``cancel()`` the task to give up. The owner
    hears ``upstream_connected`` from the connection itself, or ``upstream_failed``."""
    loop = asyncio.get_running_loop()

    async def connect() -> None:
        try:
            async with asyncio.timeout(timeout or 30):
                await loop.create_connection(lambda: StreamUpstream(owner), host, port)
        except (OSError, TimeoutError) as error:
            owner.upstream_failed(error)

    return loop.create_task(connect())
