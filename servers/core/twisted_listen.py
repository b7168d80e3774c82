"""TwistedServer: the Server shape for protocols that run on Twisted.

Listeners are wrapped in a :class:`WrappingFactory` so ``stop()`` can abort every
open connection, not only stop accepting new ones: a stopped test server must not
keep talking to a client.
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.error import CannotListenError, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol, IProtocolNegotiationFactory, IPullProducer
from twisted.internet.task import LoopingCall
from twisted.internet.tcp import Connection
from twisted.protocols.basic import FileSender
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from zope.interface import alsoProvides, directlyProvides, implementer

from .lifecycle import BindError, Server
from .loop import twisted_reactor


def peer_of(transport: Any) -> str:
    """``host:port`` of the other end of a Twisted transport."""
    address = transport.getPeer()
    host = getattr(address, "host", str(address))
    port = getattr(address, "port", "")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _HalfCloseWrapper(ProtocolWrapper):
    """A ProtocolWrapper that keeps the wrapped protocol's half-close support.

    Twisted asks the *wrapper* whether it is an IHalfCloseableProtocol when the client
    shuts down its sending side; the plain wrapper is not, so the connection was
    dropped at once with replies still unsent (an echo client doing
    ``shutdown(SHUT_WR)`` lost the end of its echo). Protocols that do not declare
    the interface behave exactly as before.
    """

    def makeConnection(self, transport: Any) -> None:
        super().makeConnection(transport)
        if IHalfCloseableProtocol.providedBy(self.wrappedProtocol):
            alsoProvides(self, IHalfCloseableProtocol)

    def readConnectionLost(self) -> None:
        self.wrappedProtocol.readConnectionLost()

    def writeConnectionLost(self) -> None:
        self.wrappedProtocol.writeConnectionLost()

    # The wrapper provides what its transport provides, IPushProducer included, but
    # ProtocolWrapper forwards these through __getattr__, which runs only after the
    # normal lookup has failed (an AttributeError made and dropped per call): Twisted's
    # HTTPChannel resumes its transport after every request.
    # (The transport is a TCP or TLS connection: both are push producers.)
    def resumeProducing(self) -> None:
        transport: Any = self.transport
        transport.resumeProducing()

    def pauseProducing(self) -> None:
        transport: Any = self.transport
        transport.pauseProducing()

    def stopProducing(self) -> None:
        transport: Any = self.transport
        transport.stopProducing()


def send_now(transport: Any) -> None:
    """Send what a request-response protocol just wrote now, not at the next reactor turn.

    Twisted's TCP transport only buffers in ``write()`` and sends when the reactor next
    finds the socket writable: one more turn (epoll, add and remove the writer) per
    reply, a large share of a one-line round trip (POP3 RETR, IMAP FETCH n). This runs
    the transport's own ``doWrite()`` (IWriteDescriptor) at once; what the socket does
    not take stays buffered and goes out the usual way, as do errors. Only plain TCP
    connections of our listeners (TLS, a closing connection: left to the reactor).
    Nothing buffered (the reply went out through ``write_now``): nothing to do, where
    ``doWrite()`` would still make an empty ``send()`` system call.
    """
    tcp = _plain_tcp(transport)
    if tcp is not None and not _write_buffer_empty(tcp):
        tcp.doWrite()


def write_now(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, sent at once when nothing is waiting before it.

    On a plain TCP connection with an empty write buffer the bytes go straight to the
    socket, without registering a writer with the reactor (two epoll changes and a
    turn per reply); what the socket does not take, or any error, goes through
    ``write()`` as usual, so order and error handling stay Twisted's. Twisted's
    buffer (``dataBuffer``/``offset``, ``_tempDataLen``) is read to know it is empty
    (tests/core/test_library_internals.py names the private one).
    """
    tcp = _plain_tcp(transport)
    if data and tcp is not None and _write_buffer_empty(tcp):
        # The socket's own send(), not writeSomeData() (a memoryview slice and a
        # Python EINTR loop around the same call, which Python retries itself). Any
        # error, EAGAIN included, leaves the bytes to write(): Twisted meets the same
        # error at its next send and handles it as always.
        try:
            data = data[tcp.socket.send(data) :]
        except OSError:
            pass
    if data:
        transport.write(data)


def send_file(transport: Any, file: BinaryIO, size: int) -> Deferred[None]:
    """Send the first ``size`` bytes of ``file`` after what was written before; fires once
    they are all handed to the socket, fails with ConnectionLost if the connection goes.

    On a plain TCP connection of our listeners the kernel copies the file to the socket
    (``os.sendfile``), never through this process: a 15 MiB message read into bytes and
    queued in Twisted's buffer cost a page-faulted allocation and copies of its own
    for every send. Elsewhere (TLS) it is Twisted's FileSender, from the file's start.
    The file stays open; nothing else may write to the transport until this fires.
    """
    tcp = _plain_tcp(transport)
    if tcp is None:
        file.seek(0)
        return FileSender().beginFileTransfer(file, transport).addCallback(lambda _: None)
    return _SendfileProducer(tcp, file, size).start()


@implementer(IPullProducer)
class _SendfileProducer:
    """Twisted calls ``resumeProducing`` when its write buffer is empty (at registration
    too, when it may not be yet); each call hands the socket as much of the file as it
    takes, then waits for it to be writable again."""

    def __init__(self, tcp: Connection, file: BinaryIO, size: int):
        self.tcp = tcp
        self.file = file
        self.offset = 0
        self.size = size
        self.done: Deferred[None] = Deferred()

    def start(self) -> Deferred[None]:
        if self.size == 0:
            self.done.callback(None)
        else:
            self.tcp.registerProducer(self, False)
        return self.done

    def resumeProducing(self) -> None:
        if not _write_buffer_empty(self.tcp):
            return  # written before us: Twisted sends it, then calls again
        try:
            sent = os.sendfile(self.tcp.fileno(), self.file.fileno(), self.offset, self.size - self.offset)
        except BlockingIOError:
            sent = None
        except OSError as error:  # the peer went away (EPIPE, ECONNRESET): close now
            self._finish(ConnectionLost(str(error)))
            self.tcp.abortConnection()
            return
        if sent == 0:  # the file is shorter than promised: the literal cannot be completed
            self._finish(ConnectionLost(f"{self.file.name!r} ended {self.size - self.offset} bytes early"))
            self.tcp.abortConnection()
            return
        self.offset += sent or 0
        if self.offset < self.size:
            self.tcp.startWriting()  # called again once the socket is writable (doWrite)
        else:
            self._finish(None)

    def stopProducing(self) -> None:
        """The connection was lost before the whole file went out."""
        self._finish(ConnectionLost("connection lost while sending a file"))

    def pauseProducing(self) -> None:
        """Never called for a pull producer."""

    def _finish(self, error: Exception | None) -> None:
        if self.done.called:
            return
        if self.tcp.producer is self:
            self.tcp.unregisterProducer()
        if error is None:
            self.done.callback(None)
        else:
            self.done.errback(error)


def _plain_tcp(transport: Any) -> Connection | None:
    """The TCP connection under one of our listeners' transports, if it is plain (not TLS)
    and open; None otherwise."""
    tcp = transport.transport if type(transport) is _HalfCloseWrapper else transport
    if isinstance(tcp, Connection) and tcp.connected and not tcp.disconnecting and not tcp.TLS:
        return tcp
    return None


def _write_buffer_empty(tcp: Connection) -> bool:
    """Nothing waits in Twisted's write buffer (``dataBuffer``/``offset``, and the private
    ``_tempDataLen``: tests/core/test_library_internals.py names it)."""
    return not tcp._tempDataLen and tcp.offset == len(tcp.dataBuffer)


class _TrackingFactory(WrappingFactory):
    protocol = _HalfCloseWrapper


class TwistedServer(Server):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._listening: list[tuple[Any, WrappingFactory]] = []
        self._udp_ports: list[Any] = []
        self._repeating: list[LoopingCall] = []

    def every(self, seconds: float, function: Any) -> LoopingCall:
        """``function`` called every ``seconds`` on the reactor until the server stops."""
        call = LoopingCall(function)
        call.clock = twisted_reactor()

        def start() -> None:  # (not returning start's Deferred, which fires only at stop)
            call.start(seconds, now=False)

        self.core.loop.call(start)
        self._repeating.append(call)
        return call

    def listen(self, name: str, factory: Any, port: int, tls: bool = False) -> int:
        """Bind ``factory`` on ``port`` (0 = any free port); record and return the bound port."""
        tracked = _TrackingFactory(factory)
        if IProtocolNegotiationFactory.providedBy(factory):
            # For TLS, Twisted asks the factory it wraps (this WrappingFactory) for the
            # ALPN protocols; without the inner list, a client offering ALPN (curl,
            # requests) gets a TLS "internal error" alert instead of a handshake.
            directlyProvides(tracked, IProtocolNegotiationFactory)
            tracked.acceptableProtocols = factory.acceptableProtocols  # type: ignore[attr-defined]
        options = self.core.tls.twisted_options() if tls else None

        def bind() -> Any:
            reactor = twisted_reactor()
            if options is not None:
                return reactor.listenSSL(port, tracked, options, interface=self.host)
            return reactor.listenTCP(port, tracked, interface=self.host)

        listening = self._bind_on_loop(bind, name, port)
        self._listening.append((listening, tracked))
        self.listeners[name] = listening.getHost().port
        return self.listeners[name]

    def listen_udp(self, name: str, datagram_protocol: Any, port: int, max_packet_size: int = 8192) -> int:
        """Bind a UDP ``datagram_protocol`` on ``port`` (0 = any); record and return the bound port."""

        def bind() -> Any:
            return twisted_reactor().listenUDP(
                port, datagram_protocol, interface=self.host, maxPacketSize=max_packet_size
            )

        listening = self._bind_on_loop(bind, f"{name}, udp", port)
        self._udp_ports.append(listening)
        self.listeners[name] = listening.getHost().port
        return self.listeners[name]

    def close_udp(self) -> None:
        """Stop every UDP listener (``stop()`` does this too)."""
        udp_ports, self._udp_ports = self._udp_ports, []

        def close() -> Any:
            return DeferredList([maybeDeferred(port.stopListening) for port in udp_ports])

        if udp_ports:
            self.core.loop.call(close)

    def _bind_on_loop(self, bind: Any, what: str, port: int) -> Any:
        try:
            return self.core.loop.call(bind)
        except CannotListenError as error:
            reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
            raise BindError(f"{self.name}: cannot listen on {self.host}:{port} ({what}): {reason}") from None

    def _unbind(self) -> None:
        repeating, self._repeating = self._repeating, []
        for call in repeating:
            if call.running:
                self.core.loop.call(call.stop)
        try:
            self.close_udp()
        finally:
            self._close_tcp()

    def _close_tcp(self) -> None:
        listening, self._listening = self._listening, []

        def close() -> Any:
            stopped = [port.stopListening() for port, _ in listening]
            for _, tracked in listening:
                for protocol in list(tracked.protocols):
                    protocol.transport.abortConnection()
            return DeferredList(stopped)

        if listening:
            self.core.loop.call(close)
