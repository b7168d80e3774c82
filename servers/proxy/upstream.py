"""The upstream side of a proxied connection: a raw TCP client that reports to its owner.

Both the HTTP forward proxy and the plain TCP listeners open upstream connections the
same way: ``connect_upstream(host, port, timeout, owner)``; the owner gets
``upstream_connected(protocol)``, ``upstream_failed(reason)``, ``upstream_data(bytes)``
and ``upstream_lost()``. Failure reasons are sorted into "refused" (502) and
"timeout" (504) by :func:`failure_kind`.

Flow control: :func:`couple` makes each side's full write buffer pause reading from
the other side (Twisted's producer/consumer), so a slow client does not make the proxy
buffer a whole download in memory.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet import error as twisted_errors
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import ClientFactory
from twisted.internet.protocol import Protocol as TwistedProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ..core.loop import twisted_reactor


class UpstreamOwner(Protocol):
    def upstream_connected(self, upstream: UpstreamProtocol) -> None: ...

    def upstream_failed(self, reason: Failure) -> None: ...

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


def failure_kind(reason: Failure) -> str:
    """"timeout" for failures a gateway reports as 504, else "refused" (502)."""
    if reason.check(twisted_errors.TimeoutError):
        return "timeout"
    return "refused"


def failure_text(reason: Failure) -> str:
    value = reason.value
    if isinstance(value, twisted_errors.DNSLookupError):
        return "the host name did not resolve"
    if isinstance(value, twisted_errors.ConnectionRefusedError):
        return "connection refused"
    if isinstance(value, twisted_errors.TimeoutError):
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
