"""SMTP DATA read in bulk: the same replies and the same stored bytes as aiosmtpd's own
``smtp_DATA``, whatever the chunks the data arrives in.

Three layers: the parser fed every possible split of each message; the refservers
server side by side with a stock aiosmtpd 1.4.6 server on real sockets (same limits,
same client bytes, same replies); and the per-class tables that replace aiosmtpd's
per-connection introspection, checked against a real ``SMTP.__init__``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from servers.mail.store import MailStore, to_crlf
from servers.smtp.data import R_LINE_TOO_LONG, R_TOO_MUCH_DATA, MessageDataParser
from servers.smtp.server import SmtpProtocol, SmtpServer, with_enhanced_code

TIMEOUT = 10
MAX_LINE_LENGTH = 100  # the server's setting; aiosmtpd's line_length_limit is one more
LINE_LIMIT = MAX_LINE_LENGTH + 1
SIZE_LIMIT = 2000
NEXT = b"NOOP\r\n"  # what a pipelining client sends after the terminator


def line(length: int, fill: bytes = b"x") -> bytes:
    """One line of ``length`` bytes, its CRLF included."""
    return fill * (length - 2) + b"\r\n"


# name -> message data as sent, terminator included
CASES: dict[str, bytes] = {
    "plain": b"Subject: hi\r\n\r\nhello\r\n.\r\n",
    "empty": b".\r\n",
    "dot-stuffed": b"..one\r\nx\r\n...\r\n..\r\n.x\r\n.\r\n",
    "bare-lf-and-cr": b"a\nb\n.\nc\rd\r\n.\r\n",
    "dot-cr-is-data": b"x\r\n.\rx\r\n.\r\n",
    "crlf-dot-crlf-inside-a-line-is-data": b"x\n.\r\n.\r\n",
    "line-at-limit": line(LINE_LIMIT) + b".\r\n",
    "line-one-over": line(LINE_LIMIT + 1) + b"after\r\n.\r\n",
    "line-over-stream-limit": line(LINE_LIMIT + 3) + b".\r\n",
    "dot-line-one-over": b"." + line(LINE_LIMIT) + b".\r\n",
    "long-line-mid-chunk": b"a\r\n" * 100 + line(500) + b"b\r\n" * 100 + b".\r\n",
    "long-line-many-kib": b"y" * 5000 + b"\r\n.\r\n",
    "long-line-ending-cr-cr": b"z" * 300 + b"\r\r\n.\r\n",
    "at-size-limit": line(100) * 20 + b".\r\n",
    "over-size": line(100) * 20 + b"x\r\n.\r\n",
    "over-size-then-long-line": line(100) * 25 + line(400) + b".\r\n",
    "long-line-then-over-size": line(400) + line(100) * 25 + b".\r\n",
    # The line that crosses the SIZE limit is also too long: aiosmtpd counts a line
    # just over its limit first (552), but refuses one over its stream limit first (500).
    "crossing-line-just-too-long": line(100) * 19 + line(LINE_LIMIT + 1) + b".\r\n",
    "crossing-line-over-stream-limit": line(100) * 19 + line(LINE_LIMIT + 50) + b".\r\n",
}
EXPECTED_ERROR = {
    "line-one-over": R_LINE_TOO_LONG,
    "line-over-stream-limit": R_LINE_TOO_LONG,
    "dot-line-one-over": R_LINE_TOO_LONG,
    "long-line-mid-chunk": R_LINE_TOO_LONG,
    "long-line-many-kib": R_LINE_TOO_LONG,
    "long-line-ending-cr-cr": R_LINE_TOO_LONG,
    "over-size": R_TOO_MUCH_DATA,
    "over-size-then-long-line": R_TOO_MUCH_DATA,
    "long-line-then-over-size": R_LINE_TOO_LONG,
    "crossing-line-just-too-long": R_TOO_MUCH_DATA,
    "crossing-line-over-stream-limit": R_LINE_TOO_LONG,
}


def parse(chunks: list[bytes]) -> tuple[int, bytes | None, str | None, int]:
    """(bytes of the input that were data, content, error, size) for chunks fed in order."""
    parser = MessageDataParser(LINE_LIMIT, SIZE_LIMIT)
    offered = 0
    for chunk in chunks:
        used = parser.feed(chunk)
        if used is not None:
            return offered + used, parser.content if parser.error is None else None, parser.error, parser.size
        offered += len(chunk)
    raise AssertionError("no terminator found")


# -- the parser, fed in every split ------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_parser_result_is_the_same_for_every_split(name: str) -> None:
    data = CASES[name]
    whole = parse([data + NEXT])
    used, content, error, size = whole
    assert used == len(data)  # the pipelined command is left for the command loop
    assert size == len(data) - 3
    assert error == EXPECTED_ERROR.get(name)
    if error is None:
        assert content == expected_content(data)
    stream = data + NEXT
    for cut in range(1, len(stream)):
        assert parse([stream[:cut], stream[cut:]]) == whole, f"split at {cut}"
    if len(stream) < 4000:
        assert parse([stream[i : i + 1] for i in range(len(stream))]) == whole, "byte by byte"


def expected_content(data: bytes) -> bytes:
    """RFC 5321 4.5.2 the slow way: split at CRLF, drop the lone dot, unstuff each line."""
    lines = data.split(b"\r\n")
    end = lines.index(b".")
    return b"".join((text[1:] if text.startswith(b".") else text) + b"\r\n" for text in lines[:end])


@pytest.mark.parametrize("cut", range(1, 5))
def test_terminator_split_anywhere_between_two_reads(cut: int) -> None:
    stream = b"body\r\n.\r\n" + NEXT
    at = len(b"body") + cut  # inside "\r\n.\r\n", whose last byte comes second
    parser = MessageDataParser(LINE_LIMIT, SIZE_LIMIT)
    assert parser.feed(stream[:at]) is None
    assert parser.feed(stream[at:]) == len(b"body\r\n.\r\n") - at
    assert parser.content == b"body\r\n"


def test_stuffed_dot_at_the_start_of_a_read_is_removed_once() -> None:
    parser = MessageDataParser(LINE_LIMIT, SIZE_LIMIT)
    assert parser.feed(b"one\r\n") is None
    assert parser.feed(b"..two\r\n.") is None
    assert parser.feed(b"\r\n") == 2
    assert parser.content == b"one\r\n.two\r\n"


def test_a_too_long_line_is_not_kept_while_it_arrives() -> None:
    parser = MessageDataParser(LINE_LIMIT, SIZE_LIMIT)
    for _ in range(100):
        assert parser.feed(b"x" * 10_000) is None
        assert len(parser._partial) <= 1  # memory stays bounded: nothing of it is kept
    assert parser.feed(b"\r\n.\r\n") == 5
    assert (parser.error, parser.size) == (R_LINE_TOO_LONG, 1_000_002)


# -- side by side with stock aiosmtpd ---------------------------------------------------


class StockSmtp(SMTP):
    line_length_limit = LINE_LIMIT  # as SmtpProtocol sets it from max_line_length


class StockHandler:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.contents.append(envelope.content)
        return "250 OK"


@pytest.fixture
def stock_aiosmtpd() -> Iterator[tuple[int, StockHandler]]:
    """aiosmtpd's own SMTP on its own loop thread, port 0, no refservers code involved."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    handler = StockHandler()

    def protocol() -> StockSmtp:
        options = {"data_size_limit": SIZE_LIMIT, "enable_SMTPUTF8": True, "decode_data": False}
        return StockSmtp(handler, hostname="stock.test", loop=loop, **options)

    server = asyncio.run_coroutine_threadsafe(loop.create_server(protocol, "127.0.0.1", 0), loop).result(TIMEOUT)
    try:
        yield server.sockets[0].getsockname()[1], handler
    finally:

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()


def read_reply(sock: socket.socket, pending: bytearray) -> bytes:
    """One whole reply (its last line has a space after the code)."""
    while True:
        end = pending.find(b"\r\n")
        while end >= 0:
            if pending[3:4] == b" ":
                reply = bytes(pending[:end])
                del pending[: end + 2]
                return reply
            del pending[: end + 2]
            end = pending.find(b"\r\n")
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        pending += chunk


def send_message(port: int, data: bytes, pieces: int) -> tuple[bytes, bytes]:
    """The reply to ``data`` after DATA, and the reply to the NOOP pipelined after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = bytearray()
        assert read_reply(sock, pending).startswith(b"220")
        for command, code in ((b"EHLO client.test", b"250"), (b"MAIL FROM:<a@example.com>", b"250"), (b"RCPT TO:<demo@example.com>", b"250"), (b"DATA", b"354")):
            sock.sendall(command + b"\r\n")
            assert read_reply(sock, pending).startswith(code), command
        stream = data + NEXT
        step = -(-len(stream) // pieces)
        for start in range(0, len(stream), step):
            sock.sendall(stream[start : start + step])
        replies = read_reply(sock, pending), read_reply(sock, pending)
        sock.sendall(b"QUIT\r\n")
        assert read_reply(sock, pending).startswith(b"221")
    return replies


def stored_content(store: MailStore, count: int) -> bytes:
    """The body of the newest message: what follows the Received header refservers adds."""
    infos = store.messages("demo")
    assert len(infos) == count
    newest = max(infos, key=lambda info: info.internal_date)
    stored = store.read("demo", newest.key)
    received = stored.index(b"Received: ")
    end = received
    while True:  # the header ends at the first CRLF not followed by a folding tab
        end = stored.index(b"\r\n", end) + 2
        if stored[end : end + 1] != b"\t":
            return stored[end:]


@pytest.mark.parametrize("pieces", [1, 7], ids=["one-write", "seven-writes"])
def test_same_replies_and_content_as_stock_aiosmtpd(
    refservers_start: Callable[..., SmtpServer],
    mail_store: MailStore,
    stock_aiosmtpd: tuple[int, StockHandler],
    pieces: int,
) -> None:
    server = refservers_start("smtp", max_line_length=str(MAX_LINE_LENGTH), max_size=str(SIZE_LIMIT))
    stock_port, stock = stock_aiosmtpd
    accepted = 0
    for name, data in CASES.items():
        theirs = send_message(stock_port, data, pieces)
        ours = send_message(server.port, data, pieces)
        assert ours[1] == with_enhanced_code(theirs[1].decode()).encode() == b"250 2.0.0 OK", name
        if theirs[0] == b"250 OK":
            assert ours[0].startswith(b"250 2.0.0 OK queued as "), name
            accepted += 1
            assert stored_content(mail_store, accepted) == to_crlf(stock.contents[-1]), name
        else:
            assert ours[0] == with_enhanced_code(theirs[0].decode()).encode(), name
            assert len(mail_store.messages("demo")) == accepted, name
    assert accepted == len(CASES) - len(EXPECTED_ERROR)


@pytest.mark.parametrize("refservers_settings", [["core.trace=true"]])
def test_message_data_traced_as_its_size(
    refservers_settings: list[str], refservers_smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    data = CASES["dot-stuffed"]
    assert send_message(refservers_smtp.port, data, 1)[0].startswith(b"250")
    wire = [r.getMessage() for r in caplog.records if r.name == "refservers.smtp.wire"]
    received = [text.split(" << ", 1)[1] for text in wire if " << " in text]
    assert received[received.index("DATA") + 1 :] == [f"<message data: {len(data) - 3} bytes>", "NOOP", "QUIT"]


# -- aiosmtpd's per-connection state, set from per-class tables --------------------------


def test_protocol_state_matches_aiosmtpd_init(refservers_smtp: SmtpServer) -> None:
    """SmtpProtocol sets what ``SMTP.__init__`` sets, without its introspection. An
    aiosmtpd release that adds or changes per-connection state fails here by name."""
    loop = refservers_smtp.core.loop

    def both() -> tuple[dict[str, Any], dict[str, Any]]:
        ours = SmtpProtocol(refservers_smtp, implicit_tls=False)
        theirs = SmtpProtocol.__new__(SmtpProtocol)
        theirs.line_length_limit = ours.line_length_limit
        options = SmtpProtocol.aiosmtpd_options(refservers_smtp, implicit_tls=False)
        SMTP.__init__(theirs, options.pop("handler"), **options)
        return vars(ours), vars(theirs)

    ours, theirs = loop.call(both)
    assert set(theirs) <= set(ours), f"aiosmtpd sets {sorted(set(theirs) - set(ours))} that SmtpProtocol does not"
    for name, value in theirs.items():
        mine = ours[name]
        if name == "_smtp_methods":
            assert set(mine) == set(value)  # ours are the guarded versions
        elif name == "_auth_methods":
            assert {k: (m.method.__func__, m.is_builtin) for k, m in mine.items()} == {
                k: (m.method.__func__, m.is_builtin) for k, m in value.items()
            }
        elif name == "_handle_hooks":
            assert mine == value
        elif isinstance(value, (asyncio.StreamReader, asyncio.Future, threading.Thread)) or name.endswith("_wr"):
            assert type(mine) is type(value), name
        elif callable(value) and hasattr(value, "__func__"):
            assert mine.__func__ is value.__func__, name
        else:
            assert mine == value, name
    assert ours["_strong_reader"]._limit == theirs["_strong_reader"]._limit == ours["line_length_limit"]
