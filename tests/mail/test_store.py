"""MailStore: the Maildir contract SMTP, POP3 and IMAP rely on (see servers/mail/store.py)."""

from __future__ import annotations

import itertools
import mailbox
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from servers.core.config import ConfigError
from servers.core.users import User, UserTable
from servers.mail.store import FolderExists, MailStore, NoSuchFolder, NoSuchMessage, to_crlf

MESSAGE = b"From: a@example.com\nTo: demo@example.com\nSubject: hello\n\nbody line\n"


@pytest.fixture
def store(tmp_path: Path) -> MailStore:
    return MailStore(tmp_path / "mail", UserTable(), domains=("example.com",))


def make_store(root: Path, **policy: str) -> MailStore:
    users = UserTable()
    users.add(User("demo", "demo"))
    return MailStore(root, users, domains=("example.com", "localhost"), **policy)


def test_deliver_is_a_complete_maildir_file_with_envelope_headers(store: MailStore) -> None:
    key = store.deliver("demo", MESSAGE, {"mail_from": "a@example.com", "rcpt_to": ["demo@example.com"]})
    path = store.user_dir("demo") / "new" / key
    data = path.read_bytes()
    assert data.startswith(b"Return-Path: <a@example.com>\r\nDelivered-To: demo@example.com\r\n")
    assert data.endswith(b"\r\n\r\nbody line\r\n")
    assert not list((store.user_dir("demo") / "tmp").iterdir())
    # Any Maildir tool reads it.
    box = mailbox.Maildir(store.user_dir("demo"), create=False)
    assert [m["Subject"] for m in box] == ["hello"]


def test_uids_persist_and_ascend_across_instances(tmp_path: Path) -> None:
    first = make_store(tmp_path)
    keys = [first.deliver("demo", MESSAGE, {}) for _ in range(3)]
    infos = first.messages("demo")
    assert [i.key for i in infos] == keys and [i.uid for i in infos] == [1, 2, 3]
    second = make_store(tmp_path)
    assert [(i.key, i.uid) for i in second.messages("demo")] == [(i.key, i.uid) for i in infos]
    assert second.uidvalidity("demo") == first.uidvalidity("demo")
    second.delete("demo", [keys[2]])
    fourth = second.deliver("demo", MESSAGE, {})
    assert first.message("demo", fourth).uid == 4  # UIDs are never reused
    assert first.next_uid("demo") == 5


def test_deliveries_leave_the_uidlist_alone_and_the_first_reader_numbers_them(store: MailStore) -> None:
    # Delivery takes no folder lock (parallel SMTP sessions must not queue on it); UIDs
    # come from the first listing, ascending in arrival order, and stay put afterwards.
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: store.deliver("demo", MESSAGE, {}), range(24)))
    assert not (store.user_dir("demo") / "refservers-uidlist").exists()
    infos = store.messages("demo")
    assert sorted(i.key for i in infos) == sorted(keys)
    assert [i.uid for i in infos] == list(range(1, 25))
    assert [i.key for i in infos] == [i.key for i in sorted(infos, key=lambda i: (i.path.stat().st_mtime, i.key))]
    later = store.deliver("demo", MESSAGE, {})
    again = store.messages("demo")
    assert [(i.key, i.uid) for i in again[:24]] == [(i.key, i.uid) for i in infos]
    assert (again[24].key, again[24].uid) == (later, 25)


def test_flags_live_in_maildir_info_and_keywords_in_uidlist(store: MailStore) -> None:
    key = store.deliver("demo", MESSAGE, {})
    assert store.messages("demo")[0].recent
    info = store.set_flags("demo", key, {"\\Seen", "\\Answered", "$Label1"})
    assert info.path.name == f"{key}:2,RS" and info.path.parent.name == "cur"
    again = store.message("demo", key)
    assert again.flags == {"\\Seen", "\\Answered", "$Label1"} and not again.recent
    assert store.read("demo", key).endswith(b"body line\r\n")
    store.set_flags("demo", key, set())
    assert store.message("demo", key).flags == frozenset()


def test_folders_append_copy_rename_delete(store: MailStore) -> None:
    store.create_folder("demo", "Archive/2024.old")
    assert store.folders("demo") == ["INBOX", "Archive/2024.old"]
    assert (store.user_dir("demo") / ".Archive.2024%2Eold" / "cur").is_dir()
    with pytest.raises(FolderExists):
        store.create_folder("demo", "Archive/2024.old")
    appended = store.append("demo", "Archive/2024.old", MESSAGE, {"\\Seen"}, 1_000_000_000.0)
    assert appended.uid == 1 and appended.internal_date == 1_000_000_000.0 and appended.flags == {"\\Seen"}
    copied = store.copy("demo", appended.key, "Archive/2024.old", "INBOX")
    assert copied.key != appended.key and copied.flags == {"\\Seen"}
    assert store.read("demo", copied.key) == store.read("demo", appended.key, "Archive/2024.old")
    validity = store.uidvalidity("demo", "Archive/2024.old")
    store.rename_folder("demo", "Archive/2024.old", "Old")
    assert store.folders("demo") == ["INBOX", "Old"]
    store.delete_folder("demo", "Old")
    assert store.folders("demo") == ["INBOX"]
    store.create_folder("demo", "Old")
    assert store.uidvalidity("demo", "Old") > validity
    with pytest.raises(NoSuchFolder):
        store.messages("demo", "Nope")
    with pytest.raises(NoSuchMessage):
        store.read("demo", "no-such-key")


def test_names_never_escape_the_root(store: MailStore) -> None:
    for user in ("../evil", ".hidden", "a/b"):
        assert store.user_dir(user).parent == store.root
    store.create_folder("demo", "../x")
    assert (store.user_dir("demo") / ".%2E%2E.x").is_dir()


def test_recipient_policies(tmp_path: Path) -> None:
    create = make_store(tmp_path / "a")
    assert create.resolve_recipient("demo@example.com") == "demo"
    assert create.resolve_recipient("<demo@LOCALHOST>") == "demo"
    assert create.resolve_recipient("demo") == "demo"
    assert create.resolve_recipient("demo@elsewhere.org") == "demo@elsewhere.org"
    assert create.authenticate("demo@elsewhere.org", "demo@elsewhere.org") == "demo@elsewhere.org"
    assert create.authenticate("new@x.org", "wrong") is None
    reject = make_store(tmp_path / "b", unknown_recipients="reject")
    assert reject.resolve_recipient("nobody@example.com") is None
    assert reject.password_of("nobody@example.com") is None
    catchall = make_store(tmp_path / "c", unknown_recipients="catchall", catchall_user="demo")
    assert catchall.resolve_recipient("nobody@example.com") == "demo"
    with pytest.raises(ConfigError):
        make_store(tmp_path / "d", unknown_recipients="catchall")


def test_subscribers_and_wait_for_message(store: MailStore) -> None:
    seen: list[tuple[str, str]] = []
    unsubscribe = store.subscribe(lambda user, folder: seen.append((user, folder)))
    timer = threading.Timer(0.2, store.deliver, ("demo", MESSAGE.replace(b"hello", b"later"), {}))
    timer.start()
    try:
        summary = store.wait_for_message(timeout=10, subject="later")
    finally:
        timer.join()
    assert summary.user == "demo" and summary.subject == "later" and "demo@example.com" in summary.to
    assert seen == [("demo", "INBOX")]
    unsubscribe()
    store.deliver("demo", MESSAGE, {})
    assert seen == [("demo", "INBOX")]
    with pytest.raises(TimeoutError):
        store.wait_for_message(timeout=0.3, subject="never")


DELIVER_MANY = """
import sys
from pathlib import Path
from servers.core.users import User, UserTable
from servers.mail.store import MailStore
users = UserTable()
users.add(User("demo", "demo"))
store = MailStore(Path(sys.argv[1]), users)
for _ in range(int(sys.argv[2])):
    store.deliver("demo", b"Subject: x\\n\\nbody\\n", {})
"""


def test_concurrent_processes_get_distinct_uids(tmp_path: Path) -> None:
    # Separate interpreters share the Maildir the way containers share a volume.
    workers = [
        subprocess.Popen([sys.executable, "-c", DELIVER_MANY, str(tmp_path), "15"]) for _ in range(3)
    ]
    local = make_store(tmp_path)
    for _ in range(15):
        local.deliver("demo", MESSAGE, {})
        local.messages("demo")  # a reader assigning UIDs while the others write
    for worker in workers:
        assert worker.wait(60) == 0
    infos = make_store(tmp_path).messages("demo")
    assert len(infos) == 60
    assert sorted(i.uid for i in infos) == list(range(1, 61))
    assert len({i.key for i in infos}) == 60


def test_to_crlf_matches_the_regex_on_every_mix_of_line_endings() -> None:
    # Every string of up to 6 of CR, LF, "." and "a": the fast path and the replace chain
    # must give exactly what re.sub(rb"\r?\n", b"\r\n", ...) gives (bare CR left alone).
    for length in range(7):
        for letters in itertools.product((b"\r", b"\n", b".", b"a"), repeat=length):
            data = b"".join(letters)
            assert to_crlf(data) == re.sub(rb"\r?\n", b"\r\n", data), data


def test_to_crlf_returns_crlf_input_as_is() -> None:
    # A 15 MiB attachment arrives CRLF throughout: no copy, no per-line work.
    data = b"line of base64\r\n" * 1000
    assert to_crlf(data) is data
