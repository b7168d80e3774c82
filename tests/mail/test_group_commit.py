"""Group commit of SMTP deliveries (servers/mail/store.py, _GroupSync): parallel
deliveries into one INBOX share the fsync of new/, and each still returns only after a
fsync of new/ that started after its own rename.

The directory fsync is wrapped (the real one still runs) to hold the first fsync until
every delivery has renamed its file, which makes the sharing deterministic.
"""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from servers.core import durable
from servers.core.users import UserTable
from servers.mail import store as store_module
from servers.mail.store import Delivery, InvalidName, MailStore

pytestmark = pytest.mark.timeout(60)

MESSAGE = b"From: a@example.com\r\nTo: demo@example.com\r\nSubject: group\r\n\r\nbody\r\n"
ENVELOPE = {"mail_from": "a@example.com", "rcpt_to": ["demo@example.com"]}
SENDERS = 20


def wait_until(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def held_first_fsync(store: MailStore, monkeypatch: pytest.MonkeyPatch, fail_first: bool = False) -> list[str]:
    """Wrap the store's directory fsync: log each one; the first waits until all SENDERS
    deliveries have renamed (taken their ticket), then runs (or fails, if asked)."""
    calls: list[str] = []
    lock = threading.Lock()

    def fsync_dir(directory: Any) -> None:
        with lock:
            calls.append(str(directory))
            first = len(calls) == 1
        if first:
            group = store._new_dir_sync(store.user_dir("demo"))
            wait_until(lambda: group._taken == SENDERS)
            if fail_first:
                raise OSError("fsync failed (test)")
        durable.fsync_dir(directory)

    monkeypatch.setattr(store_module, "fsync_dir", fsync_dir)
    return calls


def deliver_in_parallel(store: MailStore) -> list[Any]:
    def deliver(_: int) -> Any:
        try:
            return store.deliver("demo", MESSAGE, ENVELOPE)
        except OSError as error:
            return error

    with ThreadPoolExecutor(SENDERS) as pool:
        return list(pool.map(deliver, range(SENDERS)))


def test_parallel_deliveries_share_the_fsync_of_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MailStore(tmp_path / "mail", UserTable(), domains=("example.com",))
    store.ensure_user("demo")
    calls = held_first_fsync(store, monkeypatch)
    keys = deliver_in_parallel(store)
    assert all(isinstance(key, str) for key in keys)
    assert len(store.messages("demo")) == SENDERS
    # The first fsync covered only the first rename (it started before the others);
    # the second, started after all of them, covered the other 19. One fsync each
    # without group commit.
    new = str(store.user_dir("demo") / "new")
    assert calls.count(new) == 2


def test_a_failed_fsync_covers_nobody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MailStore(tmp_path / "mail", UserTable(), domains=("example.com",))
    store.ensure_user("demo")
    calls = held_first_fsync(store, monkeypatch, fail_first=True)
    results = deliver_in_parallel(store)
    # The caller whose fsync failed hears of it (SMTP answers 451); the others wait
    # for the next fsync, which covers them, instead of taking the failed one as done.
    failed = [result for result in results if isinstance(result, OSError)]
    assert len(failed) == 1
    assert len(calls) == 2


def test_a_batch_is_stored_whole_with_one_fsync_of_new_per_mailbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """deliver_many (what SMTP's delivery thread calls): each message stored, a bad one
    reported in its place without stopping the others, one fsync of each new/ for the
    batch, and one notification per mailbox."""
    store = MailStore(tmp_path / "mail", UserTable(), domains=("example.com",))
    synced: list[str] = []

    def fsync_dir(directory: Any) -> None:
        synced.append(str(directory))
        durable.fsync_dir(directory)

    monkeypatch.setattr(store_module, "fsync_dir", fsync_dir)
    announced: list[tuple[str, str]] = []
    store.subscribe(lambda user, folder: announced.append((user, folder)))
    batch = [Delivery(user, MESSAGE, ENVELOPE) for user in ("demo", "alice", "", "demo", "demo", "alice")]
    outcomes = store.deliver_many(batch)

    assert isinstance(outcomes[2], InvalidName)
    keys = [outcome for index, outcome in enumerate(outcomes) if index != 2]
    assert all(isinstance(key, str) for key in keys) and len(set(keys)) == 5
    assert sorted(info.key for info in store.messages("demo")) == sorted([outcomes[0], outcomes[3], outcomes[4]])
    assert sorted(info.key for info in store.messages("alice")) == sorted([outcomes[1], outcomes[5]])
    news = [entry for entry in synced if entry.endswith("/new")]
    assert sorted(news) == sorted(str(store.user_dir(user) / "new") for user in ("demo", "alice"))
    assert sorted(announced) == [("alice", "INBOX"), ("demo", "INBOX")]


def test_a_mailbox_removed_from_outside_is_made_again(tmp_path: Path) -> None:
    store = MailStore(tmp_path / "mail", UserTable(), domains=("example.com",))
    store.deliver("demo", MESSAGE, ENVELOPE)
    shutil.rmtree(store.user_dir("demo"))
    key = store.deliver("demo", MESSAGE, ENVELOPE)
    assert [info.key for info in store.messages("demo")] == [key]
    shutil.rmtree(store.user_dir("demo") / "new")
    again = store.deliver("demo", MESSAGE, ENVELOPE)
    assert [info.key for info in store.messages("demo")] == [again]
    assert not list((store.user_dir("demo") / "tmp").iterdir())
