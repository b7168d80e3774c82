"""slrn, a Debian newsreader, driven in tmux: list the groups, read the newest thread's
article, post one (its editor is a script that writes the body), as a user would."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers.nntp.store import NewsSpool

pytestmark = pytest.mark.skipif(
    shutil.which("slrn") is None or shutil.which("tmux") is None, reason="slrn or tmux not installed"
)
SCREEN_TIMEOUT = 30.0  # seconds for slrn to show what the test waits for


class Terminal:
    """One tmux server (its own socket, in the test's directory) running one program in a 120x40 window."""

    def __init__(self, socket: Path, command: str):
        self.socket = socket
        self.tmux("new-session", "-d", "-s", "main", "-x", "120", "-y", "40", command)

    def tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=30)
        return result.stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "main", *keys)

    def wait_for(self, text: str) -> str:
        """The screen once it shows ``text`` (polled: the screen is the only signal)."""
        deadline = time.monotonic() + SCREEN_TIMEOUT
        while True:
            screen = self.tmux("capture-pane", "-p", "-t", "main")
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen after {SCREEN_TIMEOUT}s:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def slrn(refservers_nntp: Any, tmp_path: Path) -> Iterator[Terminal]:
    home = tmp_path / "home"
    home.mkdir()
    editor = home / "edit.sh"  # slrn's "editor": appends the body to the article file
    editor.write_text('#!/bin/sh\nprintf "hello from slrn\\n.a line starting with a dot\\n" >> "$1"\n')
    editor.chmod(0o755)
    (home / ".slrnrc").write_text(
        'set hostname "example.com"\nset username "demo"\nset realname "Demo User"\n'
        f'set confirm_actions 0\nset editor_command "{editor} %s"\n'
    )
    command = (
        f"env HOME={home} TERM=xterm slrn --nntp -h {refservers_nntp.probe_host} -p {refservers_nntp.port} "
        f"-f {home / 'newsrc'} --create -n -k -C-"
    )
    terminal = Terminal(tmp_path / "tmux.sock", command)
    yield terminal
    terminal.close()


def test_slrn_lists_reads_the_newest_thread_and_posts(refservers_nntp: Any, slrn: Terminal) -> None:
    groups = slrn.wait_for("local.test")
    assert "3  comp.lang.python" in groups and "2  local.test" in groups  # unread counts
    slrn.keys("Enter")  # into comp.lang.python: the thread list
    slrn.wait_for("Reading the newest article with nntplib")
    slrn.keys("Enter")  # read it
    article = slrn.wait_for("dot-stuffed on the wire")
    # Stuffed once by the server ("..." on the wire), un-stuffed once by slrn.
    assert re.search(r"(?m)^\.\. a line that begins with a dot is dot-stuffed on the wire$", article), article

    since = refservers_nntp.journal.events()[-1].id if refservers_nntp.journal.events() else 0
    slrn.keys("q")  # back to the group list
    slrn.wait_for("News Groups")
    slrn.keys("p")
    slrn.wait_for("Newsgroup:")
    slrn.keys("C-u", "local.test", "Enter")  # C-u: clear the suggested group first
    slrn.wait_for("Subject:")
    slrn.keys("posted from slrn", "Enter")
    slrn.wait_for("Post the message?")
    slrn.keys("y")
    posted = refservers_nntp.journal.wait_for(lambda e: e.details.get("action") == "post", 30, since, "nntp", "message")
    spool = refservers_nntp.core.shared(NewsSpool)
    stored = spool.read("local.test", 3)
    assert posted.details["message_id"] == spool.entry("local.test", 3).message_id
    assert b"Subject: posted from slrn\r\n" in stored and b"User-Agent: slrn/" in stored
    assert stored.endswith(b"\r\n\r\nhello from slrn\r\n.a line starting with a dot\r\n")
