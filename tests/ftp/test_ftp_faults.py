"""FTP fault rules scoped to a user, driven with ftplib: the rule hits that login's
commands (from USER on) and leaves other sessions alone; replies are checked FTP replies."""

from __future__ import annotations

import ftplib
import io

import pytest

from servers.core import Server
from servers.core.faults import FaultError
from servers.core.users import User


def test_a_rule_scoped_to_a_user_hits_only_that_login(refservers_ftp: Server, ftp_login) -> None:
    faults = refservers_ftp.core.faults
    refservers_ftp.core.users.add(User("alice", "wonderland"))
    faults.add({"server": "ftp", "match": "STOR *", "action": "error", "user": "alice",
                "params": {"reply": "552 Quota exceeded (injected)"}})
    faults.add({"server": "ftp", "match": "PASS *", "action": "error", "user": "alice", "times": 1,
                "params": {"reply": "421 Too busy for alice"}})
    with pytest.raises(ftplib.error_temp, match="421 Too busy for alice"):
        ftp_login("alice", "wonderland")
    alice = ftp_login("alice", "wonderland")
    with pytest.raises(ftplib.error_perm, match="552 Quota exceeded"):
        alice.storbinary("STOR a.txt", io.BytesIO(b"alice"))
    demo = ftp_login("demo", "demo")
    assert demo.storbinary("STOR d.txt", io.BytesIO(b"demo")).startswith("226")
    assert demo.nlst() == ["d.txt"]
    fired = refservers_ftp.journal.events(server="ftp", kind="fault")
    assert [(e.details["subject"], e.details["user"]) for e in fired] == [("PASS ****", "alice"), ("STOR a.txt", "alice")]


def test_a_rule_scoped_at_user_fires_before_the_password(refservers_ftp: Server) -> None:
    refservers_ftp.core.faults.add({"server": "ftp", "match": "USER *", "action": "disconnect", "user": "mallory"})
    with ftplib.FTP() as client:
        client.connect(refservers_ftp.probe_host, refservers_ftp.port, timeout=10)
        with pytest.raises((EOFError, ConnectionError)):
            client.sendcmd("USER mallory")
    with ftplib.FTP() as client:
        client.connect(refservers_ftp.probe_host, refservers_ftp.port, timeout=10)
        assert client.sendcmd("USER demo").startswith("331")


def test_the_error_reply_must_be_an_ftp_error_reply(refservers_ftp: Server) -> None:
    for reply in ("226 Transfer complete", "Local error", "451"):
        with pytest.raises(FaultError, match="params.reply: expected an FTP reply"):
            refservers_ftp.core.faults.add({"server": "ftp", "action": "error", "params": {"reply": reply}})
