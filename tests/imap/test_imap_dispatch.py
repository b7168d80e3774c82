"""Commands whose arguments parse at once run without Twisted's Deferred chain
(servers/imap/server.py, ImapProtocol._run_now), FETCH parses its arguments with our
shortcuts (arg_seqset, arg_fetchatt), and a command's last answer goes out as one
write (ImapProtocol._answer): none of it may change a byte a client sees.

The same commands, good and bad, go to one server twice over real sockets: once as it
runs, once with SYNCHRONOUS_PARSERS empty and FETCH back on Twisted's own parsers
(every command through Twisted's dispatch), and the raw bytes on the wire must be equal.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.mail.imap4 import IMAP4Server

from servers.imap import server as imap_module

pytestmark = pytest.mark.timeout(60)

COMMANDS = (
    b"FETCH 1 (BODY[])",
    b"FETCH 1:2 (UID RFC822.SIZE FLAGS)",
    b"UID FETCH 1:* (BODY.PEEK[HEADER])",
    b"FETCH 2 BODY.PEEK[TEXT]",
    b"FETCH 1:* FAST",
    b"FETCH x (BODY[])",  # a bad sequence set
    b"FETCH 1 (NOSUCHITEM)",  # a bad fetch attribute
    b"FETCH",  # no arguments at all: Twisted's "Server error" wording
    b"FETCH 1",  # no fetch attributes
    b"FETCH 9 (UID)",  # past the end: no messages, still OK
    b"FETCH 0 (UID)",  # not a message number
    b"FETCH 02 (UID)",
    b"FETCH 2,1 (UID)",
    b"FETCH 2:1 (UID)",
    b"FETCH 1 (UID) (FLAGS)",
    b"UID FETCH",
    b"UID NOSUCHCOMMAND 1",
    b"NOOP",
)


def test_commands_run_at_once_answer_as_twisted_dispatch_does(
    refservers_smtp: Any, refservers_imap: Any, monkeypatch: pytest.MonkeyPatch, raw_imap: Any
) -> None:
    raw_imap.deliver(refservers_smtp, "one", "two")
    raw_imap.copy_inbox(refservers_imap, b"Copy")
    at_once = raw_imap.session(refservers_imap, b"INBOX", COMMANDS)
    monkeypatch.setattr(imap_module, "SYNCHRONOUS_PARSERS", frozenset())
    twisted_fetch = (imap_module.ImapProtocol.do_FETCH, IMAP4Server.arg_seqset, IMAP4Server.arg_fetchatt)
    monkeypatch.setattr(imap_module.ImapProtocol, "select_FETCH", twisted_fetch)
    through_twisted = raw_imap.session(refservers_imap, b"Copy", COMMANDS)
    assert at_once[0].startswith(b"* 1 FETCH (BODY[] {") and at_once[0].endswith(b" OK FETCH completed\r\n")
    assert at_once[5].startswith(b"t8 BAD Illegal syntax: Bad message number")
    assert at_once[7].startswith(b"t10 BAD Server error")
    assert at_once == through_twisted


def test_mail_arriving_before_a_fetch_is_announced_between_its_answer_and_its_ok(
    refservers_smtp: Any, refservers_imap: Any, raw_imap: Any
) -> None:
    raw_imap.deliver(refservers_smtp, "first")
    client = raw_imap(refservers_imap)
    try:
        client.command(b"LOGIN demo demo")
        client.command(b"SELECT INBOX")
        client.command(b"FETCH 1 (FLAGS)")  # \\Recent now seen by this session
        raw_imap.deliver(refservers_smtp, "second")
        reply = client.command(b"FETCH 1 (RFC822.SIZE)")
    finally:
        client.close()
    fetched, *rest = reply.split(b"\r\n")
    assert fetched.startswith(b"* 1 FETCH (RFC822.SIZE ") and fetched.endswith(b")")
    assert rest == [
        b"* 2 EXISTS",
        b"* 2 RECENT",
        b"t4 OK FETCH completed",
        b"",
    ]
