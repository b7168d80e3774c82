"""IMAP FETCH answered at once (servers/mail/imap.py, ImapProtocol.do_FETCH) words its
responses exactly as Twisted's sliced path does, which still serves large ranges.

The same FETCH commands go to one server twice over real sockets: once as it runs, once
with INLINE_FETCH_BYTES at 0 (every range of two or more messages takes Twisted's path),
and the raw bytes on the wire must be equal.
"""

from __future__ import annotations

from typing import Any

import pytest

from servers.imap import server as imap_module

pytestmark = pytest.mark.timeout(60)

COMMANDS = (
    b"FETCH 1:3 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)",
    b"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<0.20> BODY.PEEK[TEXT])",
    b"UID FETCH 1:* (BODY.PEEK[] RFC822.HEADER)",
    b"FETCH 2:3 FULL",
    b"FETCH 1:2 (BODY[])",  # sets \\Seen: FLAGS joins the response
)


LEADING_DOT = ".leading dot\r\n"  # a body line that is dot-stuffed on the way in


def test_inline_and_sliced_fetch_put_the_same_bytes_on_the_wire(
    refservers_smtp: Any, refservers_imap: Any, monkeypatch: pytest.MonkeyPatch, raw_imap: Any
) -> None:
    raw_imap.deliver(refservers_smtp, "one", "two", "three", body_tail=LEADING_DOT)
    raw_imap.copy_inbox(refservers_imap, b"Copy")
    inline = raw_imap.session(refservers_imap, b"INBOX", COMMANDS)
    monkeypatch.setattr(imap_module, "INLINE_FETCH_BYTES", 0)
    sliced = raw_imap.session(refservers_imap, b"Copy", COMMANDS)
    assert b"FETCH completed" in inline[0] and b"\r\n.leading dot" in inline[2]
    # Only the UIDs differ between the two folders' copies: COPY kept them 1-3.
    assert inline == sliced


def test_pipelined_commands_after_an_inline_fetch_are_answered_in_order(
    refservers_smtp: Any, refservers_imap: Any, raw_imap: Any
) -> None:
    raw_imap.deliver(refservers_smtp, "pipelined", body_tail=LEADING_DOT)
    client = raw_imap(refservers_imap)
    try:
        client.command(b"LOGIN demo demo")
        client.command(b"SELECT INBOX")
        client.sock.sendall(b"a FETCH 1 (BODY.PEEK[])\r\nb NOOP\r\nc FETCH 1 (RFC822.SIZE)\r\n")
        first = client.read_reply(b"a")
        second = client.read_reply(b"c")
    finally:
        client.close()
    assert first.startswith(b"* 1 FETCH (BODY[] {")
    assert b"b OK" in second and b"* 1 FETCH (RFC822.SIZE" in second
    assert second.index(b"b OK") < second.index(b"RFC822.SIZE")
