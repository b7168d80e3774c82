"""IMAP server (servers/mail/imap.py) driven by imaplib over real sockets.

Mail arrives the way it does in real use, by SMTP (smtplib against the SMTP server
of the same core), and is read back over IMAP. No sleeps: IDLE waits on the socket.
"""

from __future__ import annotations

import imaplib
import logging
import re
import smtplib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from servers import registry
from servers.core import Core, load_config
from servers.core.config import PORT
from servers.core.users import User
from servers.mail.store import MailStore

pytestmark = pytest.mark.timeout(60)


def message(subject: str, body: str = "body line", sender: str = "alice@example.com", extra: str = "") -> bytes:
    return (
        f"From: Alice <{sender}>\r\nTo: demo@example.com\r\nSubject: {subject}\r\n"
        f"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@example.com>\r\n"
        f"{extra}\r\n{body}\r\n"
    ).encode()


def send(smtp_server: Any, *messages: bytes, to: str = "demo@example.com") -> None:
    with smtplib.SMTP(smtp_server.probe_host, smtp_server.port, timeout=10) as client:
        for data in messages:
            client.sendmail("alice@example.com", [to], data)


@pytest.fixture
def imap(refservers_imap: Any) -> Iterator[imaplib.IMAP4]:
    """A logged-in imaplib client (demo/demo) on the plain port."""
    client = imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10)
    client.login("demo", "demo")
    yield client
    with _quietly():
        client.logout()


def connect(server: Any, user: str = "demo", password: str = "demo") -> imaplib.IMAP4:
    client = imaplib.IMAP4(server.probe_host, server.port, timeout=10)
    client.login(user, password)
    return client


class _quietly:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], (OSError, imaplib.IMAP4.error))  # type: ignore[arg-type]


def ok(result: tuple[str, list[Any]]) -> list[Any]:
    status, data = result
    assert status == "OK", data
    return data


def uid_flags(client: imaplib.IMAP4, which: str = "1:*") -> dict[int, set[str]]:
    """UID -> flags of the selected folder."""
    found = {}
    for line in ok(client.uid("FETCH", which, "(UID FLAGS)")):
        if not line:
            continue
        text = line.decode() if isinstance(line, bytes) else line[0].decode()
        match = re.search(r"UID (\d+) FLAGS \(([^)]*)\)", text) or re.search(r"FLAGS \(([^)]*)\) UID (\d+)", text)
        assert match, text
        if text.index("UID") < text.index("FLAGS"):
            found[int(match.group(1))] = set(match.group(2).split())
        else:
            found[int(match.group(2))] = set(match.group(1).split())
    return found


# -- delivery, FETCH -------------------------------------------------------------------------


def test_message_sent_by_smtp_is_fetched_byte_for_byte(refservers_smtp: Any, imap: imaplib.IMAP4, refservers_core: Core) -> None:
    sent = message("over smtp", body="first line\r\nsecond line")
    send(refservers_smtp, sent)
    assert ok(imap.select("INBOX")) == [b"1"]
    data = ok(imap.fetch("1", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[])"))
    header, raw = data[0]
    stored = next((refservers_core.shared(MailStore).user_dir("demo") / "new").iterdir()).read_bytes()
    assert raw == stored
    assert raw.endswith(sent)  # SMTP only prepends trace headers
    assert b"RFC822.SIZE %d" % len(stored) in header
    assert b'ENVELOPE ("Mon, 02 Jun 2025 10:00:00 +0000" "over smtp" (("Alice" NIL "alice" "example.com"))' in header
    assert b'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 25 2' in header
    assert re.search(rb'INTERNALDATE "\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d \+0000"', header)
    # PEEK left it unseen; a plain BODY[TEXT] fetch sets \Seen and reports it.
    assert b"\\Seen" not in header
    text_fetch = ok(imap.fetch("1", "(BODY[TEXT])"))
    assert text_fetch[0][1] == b"first line\r\nsecond line\r\n"
    assert b"\\Seen" in text_fetch[1]


def test_sections_headers_partial_and_multipart(refservers_smtp: Any, imap: imaplib.IMAP4) -> None:
    multipart = (
        b"From: alice@example.com\r\nTo: demo@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\npreamble\r\n'
        b"--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain part\r\n"
        b"--XYZ\r\nContent-Type: text/html\r\n\r\n<p>html part</p>\r\n--XYZ--\r\n"
    )
    send(refservers_smtp, multipart)
    ok(imap.select("INBOX"))
    fields = ok(imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"))
    assert fields[0][1] == b"From: alice@example.com\r\nSubject: parts\r\n\r\n"
    assert ok(imap.fetch("1", "(BODY.PEEK[1])"))[0][1] == b"plain part"
    assert ok(imap.fetch("1", "(BODY.PEEK[2])"))[0][1] == b"<p>html part</p>"
    assert ok(imap.fetch("1", "(BODY.PEEK[2.MIME])"))[0][1] == b"Content-Type: text/html\r\n\r\n"
    partial = ok(imap.fetch("1", "(BODY.PEEK[TEXT]<0.8>)"))
    assert partial[0][0].endswith(b"BODY[TEXT]<0> {8}") and partial[0][1] == b"preamble"
    structure = ok(imap.fetch("1", "(BODYSTRUCTURE)"))[0]
    assert b'("text" "plain" ("charset" "utf-8")' in structure and b'"mixed"' in structure
    assert "\\Seen" not in uid_flags(imap)[1]


# -- UIDs and flags persist --------------------------------------------------------------------


def test_uids_and_uidvalidity_stable_across_sessions_and_a_restart(
    refservers_smtp: Any, refservers_imap: Any, refservers_core: Core
) -> None:
    send(refservers_smtp, message("one"), message("two"), message("three"))

    def snapshot(server: Any) -> tuple[list[bytes], list[int]]:
        client = connect(server)
        try:
            ok(client.select("INBOX"))
            validity = client.response("UIDVALIDITY")[1]
            return validity, sorted(uid_flags(client))
        finally:
            client.logout()

    first = snapshot(refservers_imap)
    assert first[1] == [1, 2, 3]
    assert snapshot(refservers_imap) == first
    # A new process would have a new core and store: build both on the same data dir.
    refservers_imap.stop()
    schema = registry.schema()
    ports = [f"{section}.{o.key}=0" for section, options in schema.items() for o in options if o.kind is PORT]
    config = load_config(schema, env={}, overrides=[f"core.data_dir={refservers_core.data_dir}", *ports])
    restarted_core = registry.make_core(config)
    try:
        restarted = registry.server_class("imap")(restarted_core.config["imap"], restarted_core).start()
        assert snapshot(restarted) == first
    finally:
        restarted_core.stop_all()


def test_flags_persist_across_sessions_and_in_maildir_names(
    refservers_smtp: Any, refservers_imap: Any, refservers_core: Core
) -> None:
    send(refservers_smtp, message("flag me"))
    client = connect(refservers_imap)
    ok(client.select("INBOX"))
    stored = ok(client.store("1", "+FLAGS", "(\\Flagged \\Answered $Label1)"))
    assert b"\\Flagged" in stored[0] and b"$Label1" in stored[0]
    client.logout()

    again = connect(refservers_imap)
    ok(again.select("INBOX"))
    assert uid_flags(again) == {1: {"\\Answered", "\\Flagged", "$Label1", "\\Recent"}} or uid_flags(again) == {
        1: {"\\Answered", "\\Flagged", "$Label1"}
    }
    ok(again.store("1", "-FLAGS", "(\\Answered)"))
    ok(again.store("1", "+FLAGS.SILENT", "(\\Seen)"))
    again.logout()
    cur = refservers_core.shared(MailStore).user_dir("demo") / "cur"
    names = [path.name for path in cur.iterdir()]
    assert len(names) == 1 and names[0].endswith(":2,FS"), names


# -- SEARCH ------------------------------------------------------------------------------------


def test_search_keys(refservers_smtp: Any, imap: imaplib.IMAP4) -> None:
    send(
        refservers_smtp,
        message("invoice 42", body="please pay", sender="billing@shop.example"),
        message("lunch?", body="pizza or sushi", extra="X-Priority: 1\r\n"),
        message("invoice 43", body=("x" * 70 + "\r\n") * 70, sender="billing@shop.example"),
    )
    ok(imap.select("INBOX"))
    ok(imap.store("2", "+FLAGS", "(\\Seen $Important)"))

    def search(*criteria: str, uid: bool = False) -> list[int]:
        data = ok(imap.uid("SEARCH", *criteria) if uid else imap.search(None, *criteria))
        return [int(n) for n in data[0].split()]

    assert search("ALL") == [1, 2, 3]
    assert search("SUBJECT", "invoice") == [1, 3]
    assert search("FROM", "billing@shop") == [1, 3]
    assert search("UNSEEN") == [1, 3]
    assert search("SEEN") == [2]
    assert search("KEYWORD", "$Important") == [2]
    assert search("BODY", "sushi") == [2]
    assert search("TEXT", "X-Priority") == [2]
    assert search("HEADER", "X-Priority", "1") == [2]
    assert search("LARGER", "4000") == [3]
    assert search("OR", "SUBJECT", "lunch", "LARGER", "4000") == [2, 3]
    assert search("NOT", "SUBJECT", "invoice") == [2]
    assert search("SENTON", "2-Jun-2025") == [1, 2, 3]
    assert search("SENTBEFORE", "1-Jun-2025") == []
    assert search("SINCE", "1-Jan-2000", "2:3") == [2, 3]
    assert search("UID", "2:*", uid=True) == [2, 3]
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        imap.search(None, "FROBNICATE")
    assert search("ALL") == [1, 2, 3]  # the session survives a bad query


# -- APPEND, COPY, MOVE, EXPUNGE, CLOSE ----------------------------------------------------------


def test_append_then_fetch_with_appenduid(imap: imaplib.IMAP4) -> None:
    ok(imap.create("Drafts"))
    draft = message("draft", body="not sent yet")
    date = imaplib.Time2Internaldate(1_700_000_000)
    status, data = imap.append("Drafts", "(\\Draft \\Seen)", date, draft)
    assert status == "OK"
    appended = re.match(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert appended, data
    ok(imap.select("Drafts"))
    assert imap.response("UIDVALIDITY")[1] == [appended.group(1)]
    fetched = ok(imap.uid("FETCH", appended.group(2).decode(), "(FLAGS INTERNALDATE BODY.PEEK[])"))
    assert fetched[0][1] == draft
    assert b"\\Draft" in fetched[0][0] and b"\\Seen" in fetched[0][0]
    assert b'INTERNALDATE "14-Nov-2023 22:13:20 +0000"' in fetched[0][0]
    status, data = imap.append("Nowhere", None, None, draft)
    assert status == "NO" and b"TRYCREATE" in data[0]


def test_copy_and_move_report_new_uids(refservers_smtp: Any, imap: imaplib.IMAP4) -> None:
    send(refservers_smtp, message("keep"), message("move me"))
    ok(imap.create("Archive"))
    ok(imap.select("INBOX"))
    copied = ok(imap.copy("1", "Archive"))
    assert re.match(rb"\[COPYUID \d+ 1 1\] COPY completed", copied[0]), copied
    status, _ = imap.uid("MOVE", "2", "Archive")
    assert status == "OK"
    assert imap.response("EXPUNGE")[1] == [b"2"]
    assert sorted(uid_flags(imap)) == [1]
    ok(imap.select("Archive"))
    subjects = ok(imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert [part[1].strip() for part in subjects if isinstance(part, tuple)] == [b"Subject: keep", b"Subject: move me"]
    status, data = imap.copy("1", "Missing")
    assert status == "NO" and b"TRYCREATE" in data[0]


def test_expunge_close_and_examine(refservers_smtp: Any, imap: imaplib.IMAP4) -> None:
    send(refservers_smtp, message("a"), message("b"), message("c"), message("d"))
    ok(imap.select("INBOX"))
    ok(imap.store("2,3", "+FLAGS", "(\\Deleted)"))
    # Each EXPUNGE number is valid when the client applies it: highest first.
    assert ok(imap.expunge()) == [b"3", b"2"]
    assert sorted(uid_flags(imap)) == [1, 4]
    ok(imap.store("1", "+FLAGS", "(\\Deleted)"))
    ok(imap.close())  # CLOSE expunges silently
    ok(imap.select("INBOX", readonly=True))  # EXAMINE
    assert sorted(uid_flags(imap)) == [4]
    status, data = imap.store("1", "+FLAGS", "(\\Flagged)")
    assert status == "NO" and b"READ-ONLY" in data[0]


def test_folders_list_lsub_status_rename_delete(refservers_smtp: Any, imap: imaplib.IMAP4) -> None:
    send(refservers_smtp, message("counted"))
    ok(imap.create("Work/Projects"))
    listed = ok(imap.list())
    assert b'(\\HasNoChildren) "/" "INBOX"' in listed
    assert b'(\\Noselect \\HasChildren) "/" "Work"' in listed
    assert b'(\\HasNoChildren) "/" "Work/Projects"' in listed
    assert ok(imap.list('""', "%")) == [b'(\\HasNoChildren) "/" "INBOX"', b'(\\Noselect \\HasChildren) "/" "Work"']
    assert ok(imap.list('""', '""')) == [b'(\\Noselect) "/" ""']
    ok(imap.unsubscribe("Work/Projects"))
    assert b"Work/Projects" not in b" ".join(ok(imap.lsub()))
    status = ok(imap.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)"))
    assert status == [b'"INBOX" (MESSAGES 1 UNSEEN 1 UIDNEXT 2)'] or status == [b"INBOX (MESSAGES 1 UNSEEN 1 UIDNEXT 2)"]
    ok(imap.rename("Work/Projects", "Done"))
    assert b'"Done"' in b" ".join(ok(imap.list()))
    ok(imap.delete("Done"))
    assert b'"Done"' not in b" ".join(ok(imap.list()))
    assert imap.select("Done")[0] == "NO"


# -- IDLE ----------------------------------------------------------------------------------------


def test_idle_announces_mail_delivered_by_smtp(refservers_smtp: Any, imap: imaplib.IMAP4) -> None:
    send(refservers_smtp, message("before idle"))
    ok(imap.select("INBOX"))
    imap.send(b"I1 IDLE\r\n")
    assert imap.readline().startswith(b"+")
    send(refservers_smtp, message("during idle"))
    imap.sock.settimeout(10)  # a missing announcement fails here, not by hanging
    line = imap.readline()
    while b"EXISTS" not in line:
        assert line.startswith(b"* "), line
        line = imap.readline()
    assert line == b"* 2 EXISTS\r\n"
    imap.send(b"DONE\r\n")
    line = imap.readline()
    while not line.startswith(b"I1 "):
        line = imap.readline()
    assert line.startswith(b"I1 OK")
    fetched = ok(imap.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert fetched[0][1] == b"Subject: during idle\r\n\r\n"


def test_mail_arriving_between_commands_is_announced_before_the_next_reply(
    refservers_smtp: Any, imap: imaplib.IMAP4
) -> None:
    ok(imap.select("INBOX"))
    assert imap.response("EXISTS")[1] == [b"0"]  # (reading it clears it)
    send(refservers_smtp, message("quiet arrival"))
    ok(imap.noop())
    assert imap.response("EXISTS")[1] == [b"1"]


# -- TLS and authentication ------------------------------------------------------------------------


def test_starttls_then_login(refservers_imap: Any, refservers_core: Core) -> None:
    client = imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10)
    try:
        assert "STARTTLS" in client.capabilities
        ok(client.starttls(ssl_context=refservers_core.tls.client_context()))
        assert "STARTTLS" not in ok(client.capability())[0].decode().split()
        ok(client.login("demo", "demo"))
        ok(client.select("INBOX"))
    finally:
        client.logout()


def test_imaps_with_the_generated_ca(refservers_imap: Any, refservers_core: Core) -> None:
    assert refservers_core.tls.ca_file is not None and refservers_core.tls.ca_file.is_file()
    context = refservers_core.tls.client_context()
    client = imaplib.IMAP4_SSL("localhost", refservers_imap.listeners["tls"], ssl_context=context, timeout=10)
    try:
        assert "STARTTLS" not in client.capabilities
        ok(client.login("demo", "demo"))
        ok(client.select("INBOX"))
    finally:
        client.logout()


def test_login_failure_is_no_and_journalled_without_the_password(refservers_imap: Any) -> None:
    client = imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="LOGIN failed"):
            client.login("demo", "wrong-password-123")
        ok(client.login("demo", "demo"))  # the connection stays usable
    finally:
        client.logout()
    events = refservers_imap.journal.events(server="imap", kind="auth")
    assert [(e.details["user"], e.details["ok"]) for e in events] == [("demo", False), ("demo", True)]
    assert "wrong-password-123" not in repr(refservers_imap.journal.events(server="imap"))


def test_authenticate_plain_with_and_without_initial_response(refservers_imap: Any) -> None:
    client = imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10)
    try:
        assert "AUTH=PLAIN" in client.capabilities
        ok(client.authenticate("PLAIN", lambda challenge: b"\0demo\0demo"))
    finally:
        client.logout()
    with socket.create_connection((refservers_imap.probe_host, refservers_imap.port), timeout=10) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(b"a AUTHENTICATE PLAIN AGRlbW8Ad3Jvbmc=\r\n")  # SASL-IR, wrong password
        assert reader.readline().startswith(b"a NO [AUTHENTICATIONFAILED]")
        raw.sendall(b"b AUTHENTICATE PLAIN AGRlbW8AZGVtbw==\r\n")
        assert reader.readline().startswith(b"b OK")
        reader.close()


def test_mail_users_created_by_smtp_can_log_in(refservers_smtp: Any, refservers_imap: Any) -> None:
    send(refservers_smtp, message("to a new address"), to="newcomer@example.org")
    client = connect(refservers_imap, "newcomer@example.org", "newcomer@example.org")
    try:
        assert ok(client.select("INBOX")) == [b"1"]
    finally:
        client.logout()


def test_literal_password_is_masked_in_the_wire_trace(
    refservers_imap: Any, refservers_core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    refservers_core.users.add(User("carol", "s3cret-literal"))
    caplog.set_level(logging.INFO, logger="refservers.imap.wire")
    refservers_imap.wire.enabled = True
    with socket.create_connection((refservers_imap.probe_host, refservers_imap.port), timeout=10) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(b"a LOGIN carol {14}\r\n")
        assert reader.readline().startswith(b"+")
        raw.sendall(b"s3cret-literal\r\n")
        assert reader.readline().startswith(b"a OK")
        raw.sendall(b'b LOGIN carol "s3cret-literal"\r\n')
        assert reader.readline().startswith(b"b BAD")  # already authenticated
        raw.sendall(b"c LOGOUT\r\n")
        reader.readline()
        reader.close()
    wire = [r.getMessage() for r in caplog.records if r.name == "refservers.imap.wire"]
    assert any("a LOGIN carol" in line for line in wire), wire
    assert not any("s3cret-literal" in line for line in wire), wire


# -- robustness and faults ---------------------------------------------------------------------------


def test_bad_commands_get_bad_and_other_clients_are_served(refservers_imap: Any) -> None:
    with socket.create_connection((refservers_imap.probe_host, refservers_imap.port), timeout=10) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        for line, expected in (
            (b"x1 FROBNICATE\r\n", b"x1 BAD"),
            (b"x2 SELECT INBOX\r\n", b"x2 BAD"),  # not authenticated yet
            (b"\r\n", b"* BAD"),
            (b"x3 LOGIN\r\n", b"x3 BAD"),
        ):
            raw.sendall(line)
            assert reader.readline().startswith(expected), line
        other = connect(refservers_imap)
        ok(other.select("INBOX"))
        other.logout()
        raw.sendall(b"x4 NOOP\r\n")
        assert reader.readline().startswith(b"x4 OK")
        reader.close()


def test_fault_error_reply_on_fetch(refservers_smtp: Any, imap: imaplib.IMAP4, refservers_core: Core) -> None:
    send(refservers_smtp, message("faulty"))
    ok(imap.select("INBOX"))
    refservers_core.faults.add(
        {"server": "imap", "match": "FETCH", "action": "error", "params": {"reply": "NO [UNAVAILABLE] try later"}, "times": 1}
    )
    status, data = imap.uid("FETCH", "1", "(BODY.PEEK[])")
    assert status == "NO" and data == [b"[UNAVAILABLE] try later"]
    assert ok(imap.fetch("1", "(UID)")) == [b"1 (UID 1)"]
    fault = refservers_core.journal.wait_for(server="imap", kind="fault")
    assert fault.details["subject"] == "FETCH"


def test_fault_disconnect_and_delay(refservers_imap: Any, refservers_core: Core) -> None:
    refservers_core.faults.add({"server": "imap", "match": "SELECT", "action": "disconnect", "times": 1})
    client = connect(refservers_imap)
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        client.select("INBOX")
    client.shutdown()
    refservers_core.faults.add({"server": "imap", "match": "NOOP", "action": "delay", "params": {"seconds": 0.2}})
    delayed = connect(refservers_imap)
    try:
        ok(delayed.noop())
        ok(delayed.select("INBOX"))  # commands after a delayed one still run, in order
    finally:
        delayed.logout()
    faults = refservers_core.journal.events(server="imap", kind="fault")
    assert [f.details["action"] for f in faults] == ["disconnect", "delay"]


def test_journal_records_connect_commands_and_counts(refservers_smtp: Any, imap: imaplib.IMAP4) -> None:
    send(refservers_smtp, message("counted 1"), message("counted 2"))
    ok(imap.select("INBOX"))
    ok(imap.fetch("1:*", "(UID)"))
    events = refservers_smtp.core.journal.events(server="imap")
    last_connect = max(i for i, e in enumerate(events) if e.kind == "connect")
    events = events[last_connect:]  # this client's session (the start-up probe came first)
    kinds = [e.kind for e in events]
    assert kinds[0] == "connect"
    verbs = [e.details["verb"] for e in events if e.kind == "command"]
    assert verbs[:3] == ["CAPABILITY", "LOGIN", "SELECT"] and "FETCH" in verbs
    assert all(set(e.details) == {"tag", "verb"} for e in events if e.kind == "command")
    fetches = [e.details for e in events if e.kind == "message" and e.details["action"] == "fetch"]
    assert fetches[-1]["count"] == 2


# -- several sessions, other writers -------------------------------------------------------------


def test_append_by_one_session_wakes_another_idling_session(refservers_imap: Any) -> None:
    watcher = connect(refservers_imap)
    writer = connect(refservers_imap)
    try:
        ok(watcher.select("INBOX"))
        watcher.send(b"W1 IDLE\r\n")
        assert watcher.readline().startswith(b"+")
        # The store announces an APPEND on the loop thread itself (no thread hop).
        ok(writer.append("INBOX", None, None, message("appended while idle")))
        watcher.sock.settimeout(10)
        line = watcher.readline()
        while b"EXISTS" not in line:
            line = watcher.readline()
        assert line == b"* 1 EXISTS\r\n"
        watcher.send(b"DONE\r\n")
        while not line.startswith(b"W1 "):
            line = watcher.readline()
        assert line.startswith(b"W1 OK")
    finally:
        watcher.logout()
        writer.logout()


def test_removal_elsewhere_is_expunged_at_noop_but_not_during_fetch(
    refservers_smtp: Any, imap: imaplib.IMAP4, refservers_core: Core
) -> None:
    send(refservers_smtp, message("stays"), message("goes"))
    ok(imap.select("INBOX"))
    store = refservers_core.shared(MailStore)
    doomed = store.messages("demo")[1]
    store.delete("demo", [doomed.key])  # what a POP3 DELE+QUIT or another process does
    fetched = ok(imap.fetch("1:*", "(UID)"))
    assert imap.response("EXPUNGE")[1] == [None]  # RFC 3501 7.4.1: not during FETCH
    assert fetched == [b"1 (UID 1)"]
    ok(imap.noop())
    assert imap.response("EXPUNGE")[1] == [b"2"]
    assert sorted(uid_flags(imap)) == [1]


def test_flags_and_expunges_of_one_session_reach_another(refservers_smtp: Any, refservers_imap: Any) -> None:
    send(refservers_smtp, message("shared 1"), message("shared 2"))
    first, second = connect(refservers_imap), connect(refservers_imap)
    try:
        ok(first.select("INBOX"))
        ok(second.select("INBOX"))
        ok(first.store("1", "+FLAGS", "(\\Flagged)"))
        ok(first.store("2", "+FLAGS", "(\\Deleted)"))
        ok(first.expunge())
        ok(second.noop())
        assert second.response("EXPUNGE")[1] == [b"2"]
        assert uid_flags(second)[1] >= {"\\Flagged"}
    finally:
        first.logout()
        second.logout()


def test_fault_at_connect_greets_with_bye_then_serves_again(refservers_imap: Any, refservers_core: Core) -> None:
    refservers_core.faults.add(
        {"server": "imap", "match": "CONNECT", "action": "error", "params": {"reply": "NO [UNAVAILABLE] maintenance"}, "times": 1}
    )
    with socket.create_connection((refservers_imap.probe_host, refservers_imap.port), timeout=10) as raw:
        reader = raw.makefile("rb")
        assert reader.readline() == b"* BYE [UNAVAILABLE] maintenance\r\n"
        assert reader.readline() == b""  # closed
        reader.close()
    connect(refservers_imap).logout()
