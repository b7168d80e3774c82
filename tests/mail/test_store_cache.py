"""MailStore's reuse of a folder's last scan (``MailStore.snapshot``), and IMAP on top.

A rescan is skipped only while new/, cur/ and the uidlist keep their inode and mtime
and those mtimes were old at the scan (servers/mail/store.py, SCAN_SETTLE_NS, and
SCAN_SETTLE_FINE_NS where mtimes have sub-second parts). Inside that window every call
lists new/ and cur/ again (and rescans if the names differ), which is what most tests
see, so these tests first age the folder (set the mtimes an hour back) to reach the
cached path, then change the folder through a second MailStore on the same root:
another process sharing the volume, whose changes this instance hears of only through
the file system.
"""

from __future__ import annotations

import imaplib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from servers.core.users import User, UserTable
from servers.mail import store as store_module
from servers.mail.store import UIDLIST, InvalidName, MailStore, NoSuchMessage

pytestmark = pytest.mark.timeout(60)

MESSAGE = b"From: a@example.com\r\nTo: demo@example.com\r\nSubject: cached\r\n\r\nbody needle\r\n"
ENVELOPE = {"mail_from": "a@example.com", "rcpt_to": ["demo@example.com"]}


@pytest.fixture(autouse=True)
def two_second_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 2 s window on every file system: a loaded test machine can stall for more
    than 0.1 s between a change and the scan these tests expect to see it inside."""
    monkeypatch.setattr(store_module, "SCAN_SETTLE_FINE_NS", store_module.SCAN_SETTLE_NS)


def test_the_window_is_short_only_where_mtimes_have_sub_second_parts() -> None:
    now = time.time_ns()
    fine = now - 200_000_000  # 0.2 s ago, with a fraction
    whole = (now - 200_000_000) // 1_000_000_000 * 1_000_000_000  # a whole second, >= 0.2 s ago
    signature = (1, fine, 2, fine, 3, fine, 100)
    assert store_module._settled(signature, now, fine_ns=100_000_000)
    assert not store_module._settled(signature, now, fine_ns=300_000_000)
    if now - whole < store_module.SCAN_SETTLE_NS:
        assert not store_module._settled((1, whole, 2, fine, 3, fine, 100), now, fine_ns=100_000_000)


def make_store(root: Path) -> MailStore:
    users = UserTable()
    users.add(User("demo", "demo"))
    return MailStore(root, users, domains=("example.com", "localhost"))


def age(folder: Path, seconds: float = 3600.0) -> None:
    """Set the mtimes a scan trusts back by ``seconds``, as if the folder were idle since."""
    past = time.time() - seconds
    for path in (folder / "new", folder / "cur", folder / UIDLIST):
        os.utime(path, (past, past))


def settled_snapshot(store: MailStore, user: str = "demo") -> Any:
    """A snapshot taken on an aged folder: the one later calls reuse while nothing changes."""
    store.snapshot(user)  # numbers new messages (writes the uidlist)
    age(store.user_dir(user))
    snapshot = store.snapshot(user)
    assert store.snapshot(user) is snapshot
    return snapshot


def test_an_unchanged_folder_is_not_rescanned(tmp_path: Path) -> None:
    store = make_store(tmp_path / "mail")
    for _ in range(3):
        store.deliver("demo", MESSAGE, ENVELOPE)
    snapshot = settled_snapshot(store)
    assert len(snapshot.messages) == 3
    # A file that appears without moving new/'s mtime (a change within the same clock
    # tick as an old scan, which the settle window rules out) is not seen: proof that
    # the call answered from the last scan instead of listing the directories.
    folder = store.user_dir("demo")
    before = os.stat(folder / "new")
    (folder / "new" / "1.unnoticed.host").write_bytes(MESSAGE)
    os.utime(folder / "new", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert store.snapshot("demo") is snapshot
    assert len(store.messages("demo")) == 3


def test_a_fresh_folder_is_listed_every_time(tmp_path: Path) -> None:
    store = make_store(tmp_path / "mail")
    store.deliver("demo", MESSAGE, ENVELOPE)
    store.snapshot("demo")
    folder = store.user_dir("demo")
    before = os.stat(folder / "new")
    (folder / "new" / "1.same-tick.host").write_bytes(MESSAGE)
    os.utime(folder / "new", ns=(before.st_atime_ns, before.st_mtime_ns))
    # new/ changed less than SCAN_SETTLE_NS before the scan: not trusted, so the same
    # mtime does not hide the file.
    assert len(store.messages("demo")) == 2


def test_a_fresh_unchanged_folder_is_listed_not_rescanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the settle window an unchanged folder costs a listing of new/ and cur/,
    not a rescan (lock, uidlist, numbering): what every IMAP command after a FETCH that
    set \\Seen on a range pays until it settles. Once settled, the signature alone is
    trusted."""
    store = make_store(tmp_path / "mail")
    for _ in range(3):
        store.deliver("demo", MESSAGE, ENVELOPE)
    snapshot = store.snapshot("demo")

    def no_rescan(*args: Any) -> Any:
        raise AssertionError("rescanned an unchanged folder")

    monkeypatch.setattr(store, "_sync", no_rescan)
    assert store.snapshot("demo") is snapshot
    assert store.snapshot("demo") is snapshot
    # The window is over (as if SCAN_SETTLE_NS had passed): one more matching listing,
    # then a file that appears without moving new/'s mtime goes unnoticed, proof that
    # no listing is made any more.
    monkeypatch.setattr(store_module, "SCAN_SETTLE_NS", 0)
    monkeypatch.setattr(store_module, "SCAN_SETTLE_FINE_NS", 0)
    assert store.snapshot("demo") is snapshot
    folder = store.user_dir("demo")
    before = os.stat(folder / "new")
    (folder / "new" / "1.unnoticed.host").write_bytes(MESSAGE)
    os.utime(folder / "new", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert store.snapshot("demo") is snapshot


def test_changes_by_another_process_are_seen(tmp_path: Path) -> None:
    ours, theirs = make_store(tmp_path / "mail"), make_store(tmp_path / "mail")
    first = ours.deliver("demo", MESSAGE, ENVELOPE)
    second = ours.deliver("demo", MESSAGE, ENVELOPE)

    settled_snapshot(ours)
    third = theirs.deliver("demo", MESSAGE, ENVELOPE)  # into new/
    assert [m.key for m in ours.messages("demo")] == [first, second, third]

    settled_snapshot(ours)
    theirs.set_flags("demo", first, {"\\Seen"})  # new/ -> cur/
    assert ours.message("demo", first).flags == {"\\Seen"}

    settled_snapshot(ours)
    theirs.set_flags("demo", first, {"\\Seen", "\\Flagged"})  # a rename within cur/
    assert ours.message("demo", first).flags == {"\\Seen", "\\Flagged"}

    settled_snapshot(ours)
    theirs.set_flags("demo", first, {"\\Seen", "\\Flagged", "$Label"})  # the uidlist only
    assert ours.message("demo", first).flags == {"\\Seen", "\\Flagged", "$Label"}

    settled_snapshot(ours)
    theirs.delete("demo", [second])
    assert [m.key for m in ours.messages("demo")] == [first, third]
    assert ours.next_uid("demo") == 4


def test_a_folder_deleted_and_recreated_elsewhere_is_seen(tmp_path: Path) -> None:
    ours, theirs = make_store(tmp_path / "mail"), make_store(tmp_path / "mail")
    ours.create_folder("demo", "Work")
    ours.append("demo", "Work", MESSAGE)
    ours.snapshot("demo", "Work")
    age(ours.user_dir("demo") / ".Work")
    old = ours.snapshot("demo", "Work")
    assert ours.snapshot("demo", "Work") is old
    theirs.delete_folder("demo", "Work")
    theirs.create_folder("demo", "Work")
    fresh = ours.snapshot("demo", "Work")
    assert fresh.messages == ()
    assert fresh.uidvalidity > old.uidvalidity


def test_imap_session_on_an_idle_folder_hears_of_another_process(refservers_imap: Any, tmp_path: Path) -> None:
    """The IMAP server's store caches the scan; a delivery by another MailStore (which
    never calls this server's subscribers) still shows as EXISTS at the next command."""
    server_store: MailStore = refservers_imap.core.shared(MailStore)
    theirs = MailStore(server_store.root, server_store.users, domains=("example.com",))
    theirs.deliver("demo", MESSAGE, ENVELOPE)
    client = imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10)
    try:
        client.login("demo", "demo")
        client.select("INBOX")
        client.response("EXISTS")  # SELECT's own; what follows must come from NOOP
        client.noop()
        age(server_store.user_dir("demo"))
        client.noop()  # rescans once more, now trusted
        client.noop()  # answered from the cached scan
        assert client.response("EXISTS") == ("EXISTS", [None])
        theirs.deliver("demo", MESSAGE, ENVELOPE)
        assert client.noop()[0] == "OK"
        assert client.response("EXISTS") == ("EXISTS", [b"2"])
        status, data = client.fetch("2", "(FLAGS)")
        assert status == "OK" and b"2 (FLAGS" in data[0]
    finally:
        client.logout()


def test_reads_follow_a_message_renamed_or_removed_since_the_scan(tmp_path: Path) -> None:
    ours, theirs = make_store(tmp_path / "mail"), make_store(tmp_path / "mail")
    key = ours.deliver("demo", MESSAGE, ENVELOPE)
    gone = ours.deliver("demo", MESSAGE, ENVELOPE)
    stored = ours.read("demo", key)
    settled_snapshot(ours)
    # Both files move (new/ -> cur/, then a new name in cur/) or vanish behind the
    # cached scan's back; a read looks them up again instead of trusting old paths.
    theirs.set_flags("demo", key, {"\\Seen"})
    assert ours.read("demo", key) == stored
    theirs.set_flags("demo", key, {"\\Seen", "\\Answered"})
    assert ours.read("demo", key) == stored
    theirs.delete("demo", [gone])
    with pytest.raises(NoSuchMessage):
        ours.read("demo", gone)


def test_a_read_returns_the_whole_file_even_when_it_changed_size_since_the_scan(tmp_path: Path) -> None:
    # A read trusts the scan's size for one read() only while the file still holds that
    # many bytes; a file rewritten in place (against Maildir's rules) is read to its end.
    store = make_store(tmp_path / "mail")
    grown, shrunk, unchanged = (store.deliver("demo", MESSAGE, ENVELOPE) for _ in range(3))
    settled_snapshot(store)
    path = {info.key: info.path for info in store.messages("demo")}
    longer = path[grown].read_bytes() + b"x" * 200_000
    path[grown].write_bytes(longer)
    path[shrunk].write_bytes(b"short\r\n")
    assert store.read("demo", grown) == longer
    assert store.read("demo", shrunk) == b"short\r\n"
    assert store.read("demo", unchanged) == path[unchanged].read_bytes()


def test_set_flags_many_changes_every_found_message_in_one_call(tmp_path: Path) -> None:
    store = make_store(tmp_path / "mail")
    keys = [store.deliver("demo", MESSAGE, ENVELOPE) for _ in range(4)]
    store.snapshot("demo")
    wanted = {keys[0]: {"\\Seen"}, keys[1]: {"\\Seen", "$Label"}, keys[2]: {"\\Flagged"}, "no-such-key": {"\\Seen"}}
    changed = store.set_flags_many("demo", wanted)
    assert set(changed) == set(keys[:3])
    assert {key: set(info.flags) for key, info in changed.items()} == {k: wanted[k] for k in keys[:3]}
    # On disk, as any Maildir reader and a fresh store see it: info letters, keywords.
    folder = store.user_dir("demo")
    assert sorted(os.listdir(folder / "cur")) == sorted([f"{keys[0]}:2,S", f"{keys[1]}:2,S", f"{keys[2]}:2,F"])
    assert os.listdir(folder / "new") == [keys[3]]
    fresh = make_store(tmp_path / "mail")
    assert {m.key: set(m.flags) for m in fresh.messages("demo")} == {
        keys[0]: {"\\Seen"},
        keys[1]: {"\\Seen", "$Label"},
        keys[2]: {"\\Flagged"},
        keys[3]: set(),
    }
    assert all(store.read("demo", key) == fresh.read("demo", key) for key in keys)


def test_set_flags_many_refuses_a_bad_flag_before_changing_anything(tmp_path: Path) -> None:
    store = make_store(tmp_path / "mail")
    keys = [store.deliver("demo", MESSAGE, ENVELOPE) for _ in range(2)]
    store.snapshot("demo")
    with pytest.raises(InvalidName):
        store.set_flags_many("demo", {keys[0]: {"\\Seen"}, keys[1]: {"two words"}})
    assert all(not m.flags for m in store.messages("demo"))


def test_imap_fetch_and_store_on_a_range(refservers_imap: Any) -> None:
    server_store: MailStore = refservers_imap.core.shared(MailStore)
    keys = [server_store.deliver("demo", MESSAGE, ENVELOPE) for _ in range(5)]
    client = imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10)
    try:
        client.login("demo", "demo")
        client.select("INBOX")
        status, data = client.fetch("2:4", "(BODY[])")  # not PEEK: sets \Seen on all three
        assert status == "OK"
        assert len([item for item in data if isinstance(item, tuple)]) == 3
        status, data = client.fetch("1:5", "(FLAGS)")
        assert [b"\\Seen" in line for line in data] == [False, True, True, True, False]
        status, data = client.store("1:5", "+FLAGS", "(\\Flagged $Done)")
        assert status == "OK" and len(data) == 5
        status, data = client.store("3,5", "-FLAGS", "(\\Seen $Done)")
        assert status == "OK"
    finally:
        client.logout()
    flags = {m.key: set(m.flags) for m in make_store(server_store.root).messages("demo")}
    assert [flags[key] for key in keys] == [
        {"\\Flagged", "$Done"},
        {"\\Flagged", "$Done", "\\Seen"},
        {"\\Flagged"},
        {"\\Flagged", "$Done", "\\Seen"},
        {"\\Flagged"},
    ]


def test_imap_message_sets_on_a_folder_with_uid_gaps(refservers_imap: Any) -> None:
    """Sequence and UID sets are cut from ranges (bisect over the view), not tested one
    message at a time: gaps, ``*``, reversed and out-of-range bounds."""
    server_store: MailStore = refservers_imap.core.shared(MailStore)
    keys = [server_store.deliver("demo", MESSAGE, ENVELOPE) for _ in range(6)]
    server_store.snapshot("demo")  # UIDs 1..6
    server_store.delete("demo", [keys[1], keys[3]])  # UIDs 1, 3, 5, 6 remain
    client = imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10)

    def uids(command: str, message_set: str) -> list[int]:
        status, data = client.uid("FETCH", message_set, "(FLAGS)") if command == "UID" else client.fetch(
            message_set, "(UID)"
        )
        assert status == "OK"
        return [int(line.split(b"UID ")[1].split()[0].rstrip(b")")) for line in data if line]

    try:
        client.login("demo", "demo")
        client.select("INBOX")
        assert uids("UID", "2:5") == [3, 5]
        assert uids("UID", "5:2") == [3, 5]
        assert uids("UID", "4:*") == [5, 6]
        assert uids("UID", "1,6,7:9") == [1, 6]
        assert uids("UID", "*") == [6]
        assert uids("UID", "100:*") == [6]  # RFC 3501: "*" is the highest UID, so 100:* is 6:100
        assert uids("SEQ", "2:*") == [3, 5, 6]
        assert uids("SEQ", "4,1") == [1, 6]
        assert uids("SEQ", "3:99") == [5, 6]
    finally:
        client.logout()
