"""A Debian news client in batch mode: ``rpost`` posts from stdin, ``suck`` pulls a group
into a spool of one file per article (``-m``), both against the real NNTP server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from servers.nntp.store import NewsSpool

pytestmark = pytest.mark.skipif(
    shutil.which("suck") is None or shutil.which("rpost") is None, reason="suck not installed (.ci/apt-packages.txt)"
)
TIMEOUT = 60  # seconds either client may take on a loaded machine


def rpost(server: Any, article: bytes, *options: str) -> subprocess.CompletedProcess[bytes]:
    command = ["rpost", server.probe_host, "-N", str(server.port), "-T", "30", *options]
    return subprocess.run(command, input=article, capture_output=True, timeout=TIMEOUT, check=False)


def suck(server: Any, work: Path, newsrc: str, *options: str) -> subprocess.CompletedProcess[bytes]:
    for name in ("data", "temp", "msgs"):
        (work / name).mkdir(exist_ok=True)
    (work / "data" / "sucknewsrc").write_text(newsrc)
    command = ["suck", server.probe_host, "-N", str(server.port), "-dd", str(work / "data"), "-dt", str(work / "temp")]
    command += ["-dm", str(work / "msgs"), "-m", "-q", "-H", "-K", "-T", "30", *options]
    return subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=False, cwd=work)


def test_rpost_then_suck_the_group_back_byte_for_byte(refservers_nntp: Any, tmp_path: Path) -> None:
    article = (
        b"From: rpost <rpost@example.com>\nNewsgroups: local.test\nSubject: from rpost\n\n.leading dot\n..two\nlast\n"
    )
    posted = rpost(refservers_nntp, article)
    assert posted.returncode == 0, posted.stdout + posted.stderr
    assert b"240 article received" in posted.stdout

    pulled = suck(refservers_nntp, tmp_path, "local.test -100\n")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    spool = refservers_nntp.core.shared(NewsSpool)
    files = sorted((tmp_path / "msgs").iterdir())
    assert [f.name for f in files] == ["1-3", "2-3", "3-3"]
    for number, file in enumerate(files, start=1):
        # suck stores LF line endings; otherwise every byte is the served article.
        assert file.read_bytes() == spool.read("local.test", number).replace(b"\r\n", b"\n")
    assert files[-1].read_bytes().endswith(b"\n\n.leading dot\n..two\nlast\n")
    assert (tmp_path / "temp" / "suck.newrc").read_text() == "local.test 3\n"

    # The next run starts from suck.newrc's high-water mark: only the newer post comes.
    for file in files:
        file.unlink()
    assert rpost(refservers_nntp, article.replace(b"from rpost", b"second")).returncode == 0
    again = suck(refservers_nntp, tmp_path, "local.test 3\n")
    assert again.returncode == 0, again.stdout + again.stderr
    [newer] = (tmp_path / "msgs").iterdir()
    assert newer.read_bytes() == spool.read("local.test", 4).replace(b"\r\n", b"\n")
    assert b"Subject: second\n" in newer.read_bytes()


@pytest.mark.parametrize("refservers_settings", [["nntp.require_auth=true"]])
def test_rpost_authenticates_with_authinfo_when_posting_needs_it(
    refservers_settings: list[str], refservers_nntp: Any
) -> None:
    article = b"From: a@example.com\nNewsgroups: comp.lang.python\nSubject: authenticated\n\nhello\n"
    refused = rpost(refservers_nntp, article)
    assert b"480" in refused.stdout + refused.stderr
    assert rpost(refservers_nntp, article, "-U", "demo", "-P", "wrong").returncode != 0
    accepted = rpost(refservers_nntp, article, "-U", "demo", "-P", "demo")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    entries = refservers_nntp.core.shared(NewsSpool).entries("comp.lang.python")
    assert [e.subject for e in entries][-1] == "authenticated" and len(entries) == 4
    logins = [(e.details["ok"], e.details["user"]) for e in refservers_nntp.journal.events(server="nntp", kind="auth")]
    assert logins == [(False, "demo"), (True, "demo")]
