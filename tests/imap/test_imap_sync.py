"""A second, demanding IMAP client: isync's ``mbsync`` doing full two-way syncs.

mbsync (Debian package ``isync``) talks to the implicit-TLS port with the generated CA,
authenticates with SASL PLAIN, relies on UIDVALIDITY/UIDNEXT, UID FETCH ranges,
APPEND (with its X-TUID header), STORE, folder creation and EXPUNGE, and keeps its
own sync state between runs: a server that renumbers UIDs or forgets flags makes it
fail or duplicate mail.
"""

from __future__ import annotations

import imaplib
import shutil
import smtplib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from servers.core import Core

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync not installed (Debian package isync)"),
]


def mbsync(config: Path, home: Path) -> str:
    done = subprocess.run(
        ["mbsync", "-c", str(config), "-a"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def local_files(folder: Path) -> dict[str, Path]:
    """Subject -> file of a local Maildir folder."""
    found = {}
    for path in [*(folder / "cur").iterdir(), *(folder / "new").iterdir()]:
        subject = next(line for line in path.read_bytes().splitlines() if line.startswith(b"Subject: "))
        found[subject[9:].decode()] = path
    return found


def maildir_flags(path: Path) -> str:
    return path.name.rpartition(":2,")[2] if ":2," in path.name else ""


def server_state(server: Any, folder: str) -> dict[str, set[str]]:
    """Subject -> flags of a folder, read over IMAP."""
    client = imaplib.IMAP4(server.probe_host, server.port, timeout=10)
    try:
        client.login("demo", "demo")
        status, _ = client.select(folder, readonly=True)
        assert status == "OK"
        status, data = client.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        state = {}
        for item in data:
            if isinstance(item, tuple):
                flags = item[0].split(b"FLAGS (", 1)[1].split(b")", 1)[0].decode().split()
                state[item[1].strip().decode()[9:]] = set(flags) - {"\\Recent"}
        return state
    finally:
        client.logout()


def test_mbsync_two_way_sync(refservers_smtp: Any, refservers_imap: Any, refservers_core: Core, tmp_path: Path) -> None:
    with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=10) as client:
        for subject in ("first", "second", "third"):
            client.sendmail(
                "alice@example.com",
                ["demo@example.com"],
                f"From: alice@example.com\r\nTo: demo@example.com\r\nSubject: {subject}\r\n\r\n{subject} body\r\n".encode(),
            )
    local = tmp_path / "local"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    # "localhost": isync 1.4 checks the certificate's DNS names, not its IP addresses.
    config.write_text(
        f"""IMAPAccount refservers
Host localhost
Port {refservers_imap.listeners["tls"]}
User demo
Pass demo
SSLType IMAPS
CertificateFile {refservers_core.tls.ca_file}
AuthMechs PLAIN

IMAPStore remote
Account refservers

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel everything
Far :remote:
Near :local:
Patterns *
Create Both
Remove Both
Expunge Both
SyncState *
Sync All
"""
    )

    # 1. Server to local.
    mbsync(config, tmp_path)
    inbox = local_files(local / "INBOX")
    assert sorted(inbox) == ["first", "second", "third"]
    assert inbox["first"].read_bytes().endswith(b"\n\nfirst body\n")  # mbsync stores LF line ends

    # 2. Local to server: a flag, a new message, a new folder with a message.
    first = inbox["first"]
    first.rename(first.parent.parent / "cur" / (first.name.split(":2,")[0] + ":2,FS"))
    (local / "INBOX" / "new" / "1700000001.local.host").write_bytes(b"Subject: written locally\n\nlocal\n")
    for sub in ("cur", "new", "tmp"):
        (local / "Sent" / sub).mkdir(parents=True)
    (local / "Sent" / "cur" / "1700000002.sent.host:2,S").write_bytes(b"Subject: sent mail\n\nbye\n")
    mbsync(config, tmp_path)
    assert server_state(refservers_imap, "INBOX") == {
        "first": {"\\Flagged", "\\Seen"},
        "second": set(),
        "third": set(),
        "written locally": set(),
    }
    assert server_state(refservers_imap, "Sent") == {"sent mail": {"\\Seen"}}

    # 3. Server to local again: an expunge and a flag set by another IMAP client.
    client = imaplib.IMAP4(refservers_imap.probe_host, refservers_imap.port, timeout=10)
    client.login("demo", "demo")
    client.select("INBOX")
    client.store("2", "+FLAGS", "(\\Deleted)")
    client.expunge()
    client.store("1", "+FLAGS", "(\\Answered)")
    client.logout()
    mbsync(config, tmp_path)
    inbox = local_files(local / "INBOX")
    assert sorted(inbox) == ["first", "third", "written locally"]
    assert maildir_flags(inbox["first"]) == "FRS"

    # 4. Nothing changed: a further run is clean (UIDVALIDITY and UIDs held still).
    mbsync(config, tmp_path)
    assert sorted(local_files(local / "INBOX")) == ["first", "third", "written locally"]
    assert len(server_state(refservers_imap, "INBOX")) == 3
