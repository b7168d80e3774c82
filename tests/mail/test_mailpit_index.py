"""MailpitView's list at scale: the reused build and the parse cache kept on disk.

The view reuses its grouped, sorted list while every folder's snapshot is the same
object, and saves what it parsed to ``.mailpit-index.json`` in the store's root so a
restart does not re-parse every message (servers/mail/mailpit.py). These tests age the
folder (as tests/mail/test_store_cache.py does) to reach the store's cached scan, then
change it through a second MailStore on the same root, as another process would.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from servers.core.users import User, UserTable
from servers.mail.mailpit import INDEX_FILE, MailpitView
from servers.mail.store import UIDLIST, MailStore

pytestmark = pytest.mark.timeout(60)

ENVELOPE = {"mail_from": "a@example.com", "rcpt_to": ["demo@example.com"]}


def message(subject: str) -> bytes:
    return f"From: a@example.com\r\nTo: demo@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


def make_store(root: Path) -> MailStore:
    users = UserTable()
    users.add(User("demo", "demo"))
    return MailStore(root, users, domains=("example.com", "localhost"))


def age(store: MailStore, seconds: float = 3600.0) -> None:
    past = time.time() - seconds
    folder = store.user_dir("demo")
    for path in (folder / "new", folder / "cur", folder / UIDLIST):
        os.utime(path, (past, past))


def subjects(view: MailpitView) -> list[str]:
    return [entry.summary()["Subject"] for entry in view.entries()]


def test_a_restart_uses_the_saved_index_and_only_for_the_same_file(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    first = store.deliver("demo", message("first"), ENVELOPE)
    second = store.deliver("demo", message("second"), ENVELOPE)
    view = MailpitView(store)
    assert subjects(view) == ["second", "first"]
    view.close()
    index = tmp_path / INDEX_FILE
    saved = json.loads(index.read_bytes())
    assert sorted(row[2] for row in saved["messages"]) == sorted([first, second])
    # Edit the saved summaries: a restarted view shows the edit where the recorded size
    # still matches the file (so it did not re-parse), and re-parses where it does not.
    for row in saved["messages"]:
        row[4]["subject"] = "from the index"
        if row[2] == second:
            row[3] += 1
    index.write_bytes(json.dumps(saved).encode())
    restarted = MailpitView(make_store(tmp_path))
    assert subjects(restarted) == ["second", "from the index"]
    restarted.close()


def test_a_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.deliver("demo", message("kept"), ENVELOPE)
    (tmp_path / INDEX_FILE).write_bytes(b"{not json")
    view = MailpitView(store)
    assert subjects(view) == ["kept"]
    view.close()
    assert json.loads((tmp_path / INDEX_FILE).read_bytes())["messages"][0][4]["subject"] == "kept"


def test_the_reused_list_follows_changes_made_by_another_process(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    key = store.deliver("demo", message("one"), ENVELOPE)
    store.messages("demo")  # the first scan writes the uidlist
    age(store)
    view = MailpitView(store)
    listed = view.entries()
    assert view.entries() == listed and not listed[0].read
    other = make_store(tmp_path)  # another process on the same volume
    other.set_flags("demo", key, ["\\Seen"])
    assert [entry.read for entry in view.entries()] == [True]
    other.deliver("demo", message("two"), ENVELOPE)
    assert subjects(view) == ["two", "one"]
    other.delete("demo", [key])
    assert subjects(view) == ["two"]
    assert view.entries("demo")[0].summary()["Subject"] == "two"
    assert view.entries("nobody") == []
    view.close()
