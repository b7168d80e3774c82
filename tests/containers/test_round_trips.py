"""Cross-container round trips through the shared named volumes: mail sent to the SMTP
container is read from the IMAP (and POP3) containers; a file put into the FTP
container is fetched from the SFTP container, and back. Clients are the stdlib's and
paramiko, on the ports published on 127.0.0.1."""

from __future__ import annotations

import ftplib
import imaplib
import io
import poplib
import smtplib
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import paramiko
import pytest

from servers import registry
from servers.core.lifecycle import Server

USER, PASSWORD = "demo", "demo"  # the default user table of every container


def _message(token: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = f"{USER}@localhost"
    message["Subject"] = f"round trip {token}"
    message.set_content(f"body {token}\n")
    return message


def _send(smtp: Server, token: str) -> str:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        client.send_message(_message(token))
    event = smtp.journal.wait_for(lambda e: e.details.get("sender") == "sender@example.com", kind="message", timeout=10)
    assert event.details["users"] == [USER]
    return str(event.details["key"])


def test_mail_sent_to_the_smtp_container_is_read_from_the_imap_container(
    refservers_smtp: Server, refservers_imap: Server
) -> None:
    token = uuid.uuid4().hex
    _send(refservers_smtp, token)
    client = imaplib.IMAP4(refservers_imap.host, refservers_imap.port, timeout=10)
    try:
        client.login(USER, PASSWORD)
        client.select("INBOX", readonly=True)
        status, found = client.search(None, "SUBJECT", token)
        assert status == "OK"
        numbers = found[0].split()
        assert len(numbers) == 1
        status, parts = client.fetch(numbers[0], "(BODY.PEEK[])")
        assert status == "OK"
        raw = parts[0][1]
        assert isinstance(raw, bytes)
        assert f"body {token}".encode() in raw
        assert b"Delivered-To: demo@localhost" in raw
    finally:
        client.logout()


@pytest.mark.skipif("pop3" not in registry.SERVERS, reason="no pop3 row in servers/registry.py yet")
def test_mail_sent_to_the_smtp_container_is_read_from_the_pop3_container(
    refservers_start: Callable[..., Server], refservers_smtp: Server
) -> None:
    pop3 = refservers_start("pop3")
    token = uuid.uuid4().hex
    _send(refservers_smtp, token)
    client = poplib.POP3(pop3.host, pop3.port, timeout=10)
    try:
        client.user(USER)
        client.pass_(PASSWORD)
        _, listing, _ = client.list()
        bodies = [b"\r\n".join(client.retr(int(line.split()[0]))[1]) for line in listing]
        assert sum(f"body {token}".encode() in body for body in bodies) == 1
    finally:
        client.quit()


@pytest.fixture
def sftp_client(refservers_sftp: Server) -> Iterator[paramiko.SFTPClient]:
    ssh = paramiko.SSHClient()
    # The container generated its host key on first start; this test trusts it on sight.
    ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    ssh.connect(
        refservers_sftp.host, refservers_sftp.port, USER, PASSWORD,
        timeout=10, allow_agent=False, look_for_keys=False,
    )
    sftp = ssh.open_sftp()
    try:
        yield sftp
    finally:
        sftp.close()
        ssh.close()


@pytest.fixture
def ftp_client(refservers_ftp: Server) -> Iterator[ftplib.FTP]:
    client = ftplib.FTP()
    client.connect(refservers_ftp.host, refservers_ftp.port, timeout=10)
    client.login(USER, PASSWORD)
    client.set_pasv(True)
    try:
        yield client
    finally:
        client.quit()


def test_file_put_over_ftp_container_is_fetched_from_the_sftp_container(
    refservers_ftp: Server, ftp_client: ftplib.FTP, sftp_client: paramiko.SFTPClient
) -> None:
    name = f"ftp-to-sftp-{uuid.uuid4().hex}.bin"
    data = uuid.uuid4().bytes * 4096
    # Passive mode through Docker's port mapping: the PASV reply must name 127.0.0.1
    # (REFSERVERS_FTP_MASQUERADE_ADDRESS) and a published port of the passive range.
    host, port = ftplib.parse227(ftp_client.sendcmd("PASV"))
    assert host == "127.0.0.1"
    reply = ftp_client.storbinary(f"STOR {name}", io.BytesIO(data))
    assert reply.startswith("226")
    event = refservers_ftp.journal.wait_for(lambda e: e.details.get("path", "").endswith(name), kind="file", timeout=10)
    assert event.details["bytes"] == len(data) and event.details["complete"]
    with sftp_client.open(name, "rb") as remote:
        assert remote.read() == data
    sftp_client.remove(name)


def test_file_put_over_sftp_container_is_fetched_from_the_ftp_container(
    ftp_client: ftplib.FTP, sftp_client: paramiko.SFTPClient
) -> None:
    name = f"sftp-to-ftp-{uuid.uuid4().hex}.txt"
    data = f"written over SFTP {name}\n".encode() * 100
    with sftp_client.open(name, "wb") as remote:
        remote.write(data)
    received = io.BytesIO()
    ftp_client.retrbinary(f"RETR {name}", received.write)
    assert received.getvalue() == data
    ftp_client.delete(name)
