"""NNTP on the wire: RFC 3977 codes for bad and out-of-order input, dot-stuffing to the byte,
posting policy, AUTHINFO USER/PASS and SASL PLAIN, STARTTLS, faults and the wire trace.

A raw socket client (conftest.RawNntp) is used where nntplib would hide codes or bytes.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
from typing import Any

import pytest

from servers.core.faults import FaultError
from servers.core.users import User
from servers.nntp import server as nntp
from servers.nntp.store import NewsSpool


def code(reply: str) -> int:
    return int(reply.split()[0])


ARTICLE_HEAD = b"From: poster@example.com\r\nNewsgroups: local.test\r\nSubject: dots\r\n"
# Lines that need dot-stuffing, lines that look like it, and bytes that are not ASCII.
ARTICLE_BODY = b".\r\n..\r\n.leading\r\n...three\r\nmiddle . dot\r\ntrailing.\r\n \t.\r\n\xc3\xa9t\xc3\xa9\r\n"


def stuffed(data: bytes) -> bytes:
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in data.split(b"\r\n")[:-1])


def test_dot_stuffing_is_exact_to_the_byte_both_ways(refservers_nntp: Any, raw_nntp: Any) -> None:
    client = raw_nntp()
    assert code(client.command("POST")) == nntp.SEND_ARTICLE
    client.send(stuffed(ARTICLE_HEAD + b"\r\n" + ARTICLE_BODY) + b".\r\n")
    posted = client.line()
    assert code(posted) == nntp.POSTED
    message_id = posted.split()[-1]

    spool = refservers_nntp.core.shared(NewsSpool)
    stored = spool.read("local.test", 3)
    assert stored.endswith(b"\r\n\r\n" + ARTICLE_BODY)  # un-stuffed on the way in, body untouched
    assert (refservers_nntp.data_dir / "local.test" / "3").read_bytes() == stored

    assert client.command("BODY " + message_id) == f"222 0 {message_id}"
    assert client.block() == stuffed(ARTICLE_BODY)  # stuffed on the way out, byte for byte
    assert client.command("ARTICLE " + message_id).startswith("220 0 ")
    assert client.block() == stuffed(stored)
    assert client.command("HEAD " + message_id).startswith("221 0 ")
    assert client.block() == stored.split(b"\r\n\r\n")[0] + b"\r\n"


BEFORE_ANY_GROUP = [
    ("ARTICLE", nntp.NO_GROUP_SELECTED),
    ("HEAD 1", nntp.NO_GROUP_SELECTED),
    ("NEXT", nntp.NO_GROUP_SELECTED),
    ("LAST", nntp.NO_GROUP_SELECTED),
    ("OVER", nntp.NO_GROUP_SELECTED),
    ("XHDR subject 1-", nntp.NO_GROUP_SELECTED),
    ("LISTGROUP", nntp.NO_GROUP_SELECTED),
    ("ARTICLE <nobody@nowhere>", nntp.NO_SUCH_MESSAGE_ID),
    ("GROUP no.such.group", nntp.NO_SUCH_GROUP),
    ("AUTHINFO PASS secret", nntp.AUTH_OUT_OF_SEQUENCE),
    ("AUTHINFO SASL CRAM-MD5", nntp.FEATURE_NOT_SUPPORTED),
    ("AUTHINFO SASL PLAIN !!notbase64", nntp.BASE64_ERROR),
    ("AUTHINFO FOO", nntp.SYNTAX_ERROR),
    ("XYZZY", nntp.UNKNOWN_COMMAND),
    ("GROUP", nntp.SYNTAX_ERROR),
    ("GROUP a b", nntp.SYNTAX_ERROR),
    ("LIST DISTRIBUTIONS", nntp.SYNTAX_ERROR),
    ("MODE STREAM", nntp.SYNTAX_ERROR),
    ("NEWGROUPS 20241301 000000", nntp.SYNTAX_ERROR),
    ("NEWGROUPS 20240101 000000 PST", nntp.SYNTAX_ERROR),
    ("NEWNEWS * 2024 000000", nntp.SYNTAX_ERROR),
    ("\x00\xff garbage", nntp.UNKNOWN_COMMAND),
    ("", nntp.SYNTAX_ERROR),
    ("GROUP " + "x" * 600, nntp.SYNTAX_ERROR),
]
IN_A_GROUP = [
    ("ARTICLE 99", nntp.NO_SUCH_NUMBER),
    ("ARTICLE abc", nntp.SYNTAX_ERROR),
    ("OVER 50-60", nntp.NO_SUCH_NUMBER),
    ("OVER x-y", nntp.SYNTAX_ERROR),
    ("IHAVE <sample-1.local.test@refservers>", nntp.NOT_WANTED),
    ("AUTHINFO USER demo", nntp.PASSWORD_REQUIRED),
    ("AUTHINFO PASS wrong", nntp.AUTH_REJECTED),
    ("AUTHINFO USER demo", nntp.PASSWORD_REQUIRED),
    ("AUTHINFO PASS demo", nntp.AUTH_ACCEPTED),
    ("AUTHINFO USER demo", nntp.NOT_PERMITTED),
    ("STARTTLS", nntp.NOT_PERMITTED),  # RFC 4642: not after authentication
]


def test_bad_input_and_wrong_order_get_rfc_codes_and_the_session_goes_on(raw_nntp: Any) -> None:
    client = raw_nntp()
    assert code(client.greeting) == nntp.READY_POSTING
    for command, expected in BEFORE_ANY_GROUP:
        assert code(client.command(command)) == expected, command
    assert client.command("GROUP local.test") == "211 2 1 2 local.test"
    for command, expected in IN_A_GROUP:
        assert code(client.command(command)) == expected, command
    assert code(client.command("DATE")) == nntp.DATE_FOLLOWS
    assert code(client.command("QUIT")) == nntp.CLOSING


@pytest.mark.parametrize("refservers_settings", [["nntp.groups=empty.group=nothing here;local.test=tests"]])
def test_empty_group_current_article_invalid(refservers_settings: list[str], raw_nntp: Any) -> None:
    client = raw_nntp()
    assert client.command("GROUP empty.group") == "211 0 1 0 empty.group"
    for command in ("ARTICLE", "NEXT", "STAT", "OVER"):
        assert code(client.command(command)) == nntp.CURRENT_INVALID, command
    assert client.command("LISTGROUP empty.group") == "211 0 1 0 empty.group"
    assert client.block() == b""


def post(client: Any, article: bytes) -> str:
    reply = client.command("POST")
    if code(reply) != nntp.SEND_ARTICLE:
        return reply
    client.send(stuffed(article) + b".\r\n")
    return client.line()


@pytest.mark.parametrize("refservers_settings", [["nntp.read_only_groups=local.test", "nntp.max_article_size=2000"]])
def test_posting_failures_get_441(refservers_settings: list[str], refservers_nntp: Any, raw_nntp: Any) -> None:
    client = raw_nntp()
    ok = b"From: a@example.com\r\nNewsgroups: comp.lang.python\r\nSubject: s\r\nMessage-ID: <once@example.com>\r\n\r\nbody\r\n"
    assert code(post(client, ok)) == nntp.POSTED
    refused = {
        "duplicate": ok,
        "no From": b"Newsgroups: comp.lang.python\r\nSubject: s\r\n\r\nbody\r\n",
        "no Newsgroups": b"From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n",
        "unknown group": b"From: a@example.com\r\nNewsgroups: alt.nowhere\r\nSubject: s\r\n\r\nbody\r\n",
        "read-only group": b"From: a@example.com\r\nNewsgroups: local.test\r\nSubject: s\r\n\r\nbody\r\n",
        "bad Message-ID": b"From: a@example.com\r\nNewsgroups: comp.lang.python\r\nSubject: s\r\nMessage-ID: nope\r\n\r\nx\r\n",
        "too big": b"From: a@example.com\r\nNewsgroups: comp.lang.python\r\nSubject: s\r\n\r\n" + b"x" * 3000 + b"\r\n",
    }
    for why, article in refused.items():
        assert code(post(client, article)) == nntp.POSTING_FAILED, why
    assert client.command("LIST ACTIVE").startswith("215")
    assert client.block() == b"comp.lang.python 4 1 y\r\nlocal.test 2 1 n\r\n"
    assert client.command("GROUP comp.lang.python") == "211 4 1 4 comp.lang.python"


def test_a_header_line_named_path_without_a_colon_is_kept_as_it_came(refservers_nntp: Any, raw_nntp: Any) -> None:
    # Such a line is no header (parse_headers skips it), so it is no Path to prepend to:
    # it used to stop the post with an IndexError and the client heard nothing.
    client = raw_nntp()
    article = b"From: a@example.com\r\nNewsgroups: local.test\r\nPath\r\nSubject: colonless\r\n\r\nhi\r\n"
    posted = post(client, article)
    assert code(posted) == nntp.POSTED
    spool = refservers_nntp.core.shared(NewsSpool)
    group, entry = spool.find(posted.split()[-1])
    stored = spool.read(group, entry.number)
    assert stored.startswith(
        b"Path: refservers!not-for-mail\r\nFrom: a@example.com\r\nNewsgroups: local.test\r\nPath\r\n"
    )
    assert entry.subject == "colonless"


def test_cross_post_gets_a_number_in_each_group_and_one_xref(refservers_nntp: Any, raw_nntp: Any) -> None:
    client = raw_nntp()
    article = b"From: a@example.com\r\nNewsgroups: local.test, comp.lang.python\r\nSubject: both\r\nXref: forged x:1\r\n\r\nhi\r\n"
    message_id = post(client, article).split()[-1]
    spool = refservers_nntp.core.shared(NewsSpool)
    stored = spool.read("local.test", 3)
    assert stored == spool.read("comp.lang.python", 4)
    assert b"Xref: refservers local.test:3 comp.lang.python:4\r\n" in stored and b"forged" not in stored
    client.command("GROUP comp.lang.python")
    assert client.command("STAT 4") == f"223 4 {message_id}"


def test_pipelined_commands_after_a_post_wait_for_its_240(raw_nntp: Any) -> None:
    client = raw_nntp()
    assert code(client.command("POST")) == nntp.SEND_ARTICLE
    article = b"From: a@example.com\r\nNewsgroups: local.test\r\nSubject: piped\r\n\r\nx\r\n"
    client.send(article + b".\r\nGROUP local.test\r\nSTAT 3\r\nQUIT\r\nDATE\r\n")
    replies = [client.line() for _ in range(4)]
    assert [code(r) for r in replies] == [nntp.POSTED, nntp.GROUP_SELECTED, nntp.ARTICLE_EXISTS, nntp.CLOSING]
    assert replies[1] == "211 3 1 3 local.test" and replies[2].split()[-1] == replies[0].split()[-1]
    with pytest.raises(ConnectionError):  # nothing is handled after QUIT
        client.line()


def test_article_data_in_any_pieces_is_stored_the_same(refservers_nntp: Any, raw_nntp: Any) -> None:
    # Article data is read in raw chunks: the terminator, a stuffed dot or a CRLF may be
    # split between reads, and what follows the terminator is the next command.
    spool = refservers_nntp.core.shared(NewsSpool)
    data = stuffed(ARTICLE_HEAD + b"\r\n" + ARTICLE_BODY) + b".\r\nDATE\r\n"
    terminator = data.index(b"\r\n.\r\nDATE")
    for cut in [1, 2, len(ARTICLE_HEAD) + 3, *range(terminator, terminator + 6)]:
        client = raw_nntp()
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert code(client.command("POST")) == nntp.SEND_ARTICLE
        for start in range(0, len(data), cut):
            client.send(data[start : start + cut])
        posted = client.line()
        assert code(posted) == nntp.POSTED, cut
        assert code(client.line()) == nntp.DATE_FOLLOWS
        group, entry = spool.find(posted.split()[-1])
        assert spool.read(group, entry.number).endswith(b"\r\n\r\n" + ARTICLE_BODY), cut


def test_two_posts_pipelined_are_both_stored(refservers_nntp: Any, raw_nntp: Any) -> None:
    # The second POST and its article wait (held lines) behind the first one's 240.
    client = raw_nntp()
    article = b"From: a@example.com\r\nNewsgroups: local.test\r\nSubject: twice %d\r\n\r\nbody %d\r\n.\r\n"
    client.send(b"POST\r\n" + article % (1, 1) + b"POST\r\n" + article % (2, 2) + b"DATE\r\n")
    replies = [code(client.line()) for _ in range(5)]
    assert replies == [nntp.SEND_ARTICLE, nntp.POSTED, nntp.SEND_ARTICLE, nntp.POSTED, nntp.DATE_FOLLOWS]
    assert client.command("GROUP local.test") == "211 4 1 4 local.test"


@pytest.mark.parametrize("line_end", [b"\r\n", b""], ids=["whole line", "no line end yet"])
def test_an_article_line_over_the_limit_closes_with_400(raw_nntp: Any, line_end: bytes) -> None:
    client = raw_nntp()
    assert code(client.command("POST")) == nntp.SEND_ARTICLE
    client.send(b"Subject: long\r\n" + b"x" * (nntp.NntpProtocol.MAX_LENGTH + 2) + line_end)
    assert code(client.line()) == nntp.SERVICE_UNAVAILABLE
    with pytest.raises(ConnectionError):
        client.line()


def test_ihave_transfers_an_article_with_its_message_id(raw_nntp: Any) -> None:
    client = raw_nntp()
    assert code(client.command("IHAVE <peer-1@example.com>")) == nntp.SEND_TRANSFER
    client.send(
        b"From: a@example.com\r\nNewsgroups: local.test\r\nSubject: t\r\nMessage-ID: <peer-1@example.com>\r\n\r\nx\r\n.\r\n"
    )
    assert client.line() == "235 article transferred <peer-1@example.com>"
    assert code(client.command("IHAVE <peer-1@example.com>")) == nntp.NOT_WANTED


@pytest.mark.parametrize("refservers_settings", [["nntp.require_auth=true"]])
def test_require_auth_and_read_only_users(refservers_settings: list[str], refservers_nntp: Any, raw_nntp: Any) -> None:
    refservers_nntp.core.users.add(User("reader", "reader-pw", read_only=True))
    article = b"From: a@example.com\r\nNewsgroups: local.test\r\nSubject: s\r\n\r\nx\r\n"
    anonymous = raw_nntp()
    assert code(anonymous.command("GROUP local.test")) == nntp.GROUP_SELECTED  # reading stays open
    assert code(post(anonymous, article)) == nntp.AUTH_REQUIRED
    assert code(anonymous.command("IHAVE <x@y>")) == nntp.AUTH_REQUIRED

    reader = raw_nntp()
    assert code(reader.command("AUTHINFO USER reader")) == nntp.PASSWORD_REQUIRED
    assert code(reader.command("AUTHINFO PASS reader-pw")) == nntp.AUTH_ACCEPTED
    assert code(post(reader, article)) == nntp.POSTING_NOT_PERMITTED
    assert code(reader.command("MODE READER")) == nntp.READY_NO_POSTING

    writer = raw_nntp()
    assert code(writer.command("AUTHINFO USER demo")) == nntp.PASSWORD_REQUIRED
    assert code(writer.command("AUTHINFO PASS demo")) == nntp.AUTH_ACCEPTED
    assert code(post(writer, article)) == nntp.POSTED


@pytest.mark.parametrize("refservers_settings", [["nntp.require_auth_to_read=true"]])
def test_require_auth_to_read(refservers_settings: list[str], raw_nntp: Any) -> None:
    client = raw_nntp()
    assert code(client.command("CAPABILITIES")) == nntp.CAPABILITY_LIST
    client.block()
    for command in (
        "GROUP local.test",
        "LIST",
        "ARTICLE <sample-1.local.test@refservers>",
        "NEWNEWS * 20000101 000000",
    ):
        assert code(client.command(command)) == nntp.AUTH_REQUIRED, command
    sasl = base64.b64encode(b"\0demo\0demo").decode()
    assert code(client.command("AUTHINFO SASL PLAIN " + sasl)) == nntp.AUTH_ACCEPTED
    assert code(client.command("GROUP local.test")) == nntp.GROUP_SELECTED


@pytest.mark.parametrize("refservers_settings", [["nntp.auth_requires_tls=true"]])
def test_auth_requires_tls_then_starttls_discards_injected_plaintext(
    refservers_settings: list[str], refservers_nntp: Any, raw_nntp: Any
) -> None:
    client = raw_nntp()
    assert code(client.command("AUTHINFO USER demo")) == nntp.ENCRYPTION_REQUIRED
    # RFC 4642 2.2.2: commands pipelined in plaintext after STARTTLS must not run.
    client.send("STARTTLS\r\nAUTHINFO USER demo\r\n")
    assert code(client.line()) == nntp.TLS_CONTINUE
    context = refservers_nntp.core.tls.client_context()
    client.sock = context.wrap_socket(client.sock, server_hostname=refservers_nntp.probe_host)
    client.reader = client.sock.makefile("rb")
    assert code(client.command("DATE")) == nntp.DATE_FOLLOWS  # nothing queued before it
    assert code(client.command("STARTTLS")) == nntp.NOT_PERMITTED
    assert code(client.command("AUTHINFO SASL PLAIN")) == nntp.SASL_CONTINUE
    assert code(client.command("*")) == nntp.AUTH_REJECTED  # cancelled
    assert code(client.command("AUTHINFO SASL PLAIN =")) == nntp.SASL_CONTINUE
    assert code(client.command(base64.b64encode(b"\0demo\0demo").decode())) == nntp.AUTH_ACCEPTED
    secure = raw_nntp(refservers_nntp.listeners["tls"], context)
    assert code(secure.greeting) == nntp.READY_POSTING
    assert code(secure.command("STARTTLS")) == nntp.NOT_PERMITTED


def test_fault_rules_error_delay_disconnect(refservers_nntp: Any, raw_nntp: Any) -> None:
    faults = refservers_nntp.core.faults
    faults.add(
        {"server": "nntp", "match": "GROUP local.*", "action": "error", "params": {"reply": "400 go away"}, "times": 1}
    )
    faults.add({"server": "nntp", "match": "DATE", "action": "delay", "params": {"seconds": 0.3}, "times": 1})
    faults.add({"server": "nntp", "match": "AUTHINFO PASS *", "action": "disconnect"})
    client = raw_nntp()
    assert client.command("GROUP local.test") == "400 go away"
    assert code(client.command("GROUP local.test")) == nntp.GROUP_SELECTED  # times=1: fired once
    started = time.monotonic()
    client.send("DATE\r\nSTAT\r\n")  # STAT waits behind the delayed DATE
    assert code(client.line()) == nntp.DATE_FOLLOWS
    assert time.monotonic() - started >= 0.3
    assert code(client.line()) == nntp.ARTICLE_EXISTS
    assert code(client.command("AUTHINFO USER demo")) == nntp.PASSWORD_REQUIRED
    client.send("AUTHINFO PASS demo\r\n")
    with pytest.raises(ConnectionError):
        client.line()
    fired = [
        (e.details["action"], e.details["subject"]) for e in refservers_nntp.journal.events(server="nntp", kind="fault")
    ]
    assert fired == [("error", "GROUP local.test"), ("delay", "DATE"), ("disconnect", "AUTHINFO PASS ****")]


def test_user_scoped_fault_fires_only_for_that_users_session(refservers_nntp: Any, raw_nntp: Any) -> None:
    refservers_nntp.core.users.add(User("carol", "carol-pw"))
    refservers_nntp.core.faults.add(
        {
            "server": "nntp",
            "match": "GROUP *",
            "action": "error",
            "user": "demo",
            "params": {"reply": "502 not for you"},
        }
    )
    refservers_nntp.core.faults.add({"server": "nntp", "match": "AUTHINFO USER *", "action": "delay", "user": "carol"})
    anonymous, demo, carol = raw_nntp(), raw_nntp(), raw_nntp()
    assert code(anonymous.command("GROUP local.test")) == nntp.GROUP_SELECTED  # about nobody: untouched
    demo.command("AUTHINFO USER demo")
    assert code(demo.command("AUTHINFO PASS demo")) == nntp.AUTH_ACCEPTED
    assert demo.command("GROUP local.test") == "502 not for you"
    started = time.monotonic()
    assert code(carol.command("AUTHINFO USER carol")) == nntp.PASSWORD_REQUIRED  # the delay default: 1 s
    assert time.monotonic() - started >= 1.0
    assert code(carol.command("AUTHINFO PASS carol-pw")) == nntp.AUTH_ACCEPTED
    assert code(carol.command("GROUP local.test")) == nntp.GROUP_SELECTED
    fired = [
        (e.details["action"], e.details["subject"]) for e in refservers_nntp.journal.events(server="nntp", kind="fault")
    ]
    assert fired == [("error", "GROUP local.test"), ("delay", "AUTHINFO USER carol")]


def test_fault_rules_with_bad_params_are_refused_when_added(refservers_nntp: Any) -> None:
    faults = refservers_nntp.core.faults
    with pytest.raises(FaultError, match="params.reply: expected an NNTP reply"):
        faults.add({"server": "nntp", "action": "error", "params": {"reply": "240 fine really"}})
    with pytest.raises(FaultError, match="params.secs: unknown parameter"):
        faults.add({"server": "nntp", "action": "delay", "params": {"secs": 1}})


@pytest.mark.parametrize("refservers_settings", [["core.trace=true"]])
def test_passwords_never_reach_the_wire_trace_or_journal(
    refservers_settings: list[str], refservers_nntp: Any, raw_nntp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Nntp-S3cret pass"
    refservers_nntp.core.users.add(User("erin", secret))
    caplog.set_level(logging.DEBUG)
    client = raw_nntp()
    client.command("AUTHINFO USER erin")
    assert code(client.command("AUTHINFO PASS " + secret)) == nntp.AUTH_ACCEPTED
    sasl = base64.b64encode(f"\0erin\0{secret}".encode()).decode()
    for line in ("AUTHINFO SASL PLAIN " + sasl,):
        other = raw_nntp()
        assert code(other.command(line)) == nntp.AUTH_ACCEPTED
    third = raw_nntp()
    assert code(third.command("AUTHINFO SASL PLAIN")) == nntp.SASL_CONTINUE
    assert code(third.command(sasl)) == nntp.AUTH_ACCEPTED
    wire = [r.getMessage() for r in caplog.records if r.name == "refservers.nntp.wire"]
    assert any("<< AUTHINFO PASS ****" in line for line in wire)
    assert any("<< AUTHINFO SASL PLAIN ****" in line for line in wire)
    for value in (secret, "S3cret", sasl):
        assert value not in caplog.text
        assert all(value not in repr(e.details) for e in refservers_nntp.journal.events())


@pytest.mark.parametrize("refservers_settings", [["nntp.idle_timeout=0.5"]])
def test_idle_clients_are_closed_with_400(refservers_settings: list[str], raw_nntp: Any) -> None:
    client = raw_nntp()
    started = time.monotonic()
    assert code(client.command("DATE")) == nntp.DATE_FOLLOWS  # activity restarts the timer
    assert code(client.line()) == nntp.SERVICE_UNAVAILABLE
    assert time.monotonic() - started >= 0.5
    with pytest.raises(ConnectionError):
        client.line()
