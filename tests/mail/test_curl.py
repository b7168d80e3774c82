"""curl as an SMTP and POP3 client (plain, STARTTLS/STLS, implicit TLS)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from servers.mail.store import MailStore

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")

MESSAGE = b"From: curl@example.com\r\nTo: demo@example.com\r\nSubject: via curl\r\n\r\nsent by curl\r\n"


def curl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(["curl", "--silent", "--show-error", "--max-time", "30", *args], input=data, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return result


def test_curl_smtp_starttls_then_pop3s_retrieve(refservers_smtp: Any, refservers_pop3: Any, mail_store: MailStore) -> None:
    ca = str(refservers_smtp.core.tls.ca_file)
    curl(
        f"smtp://localhost:{refservers_smtp.port}", "--ssl-reqd", "--cacert", ca,
        "--user", "demo:demo", "--mail-from", "curl@example.com", "--mail-rcpt", "demo@example.com",
        "--upload-file", "-", data=MESSAGE,
    )
    (info,) = mail_store.messages("demo")
    listing = curl(f"pop3s://localhost:{refservers_pop3.listeners['tls']}/", "--cacert", ca, "--user", "demo:demo")
    assert listing.stdout.decode().split() == ["1", str(info.size)]
    retrieved = curl(f"pop3://localhost:{refservers_pop3.port}/1", "--ssl-reqd", "--cacert", ca, "--user", "demo:demo")
    assert retrieved.stdout.endswith(MESSAGE)
    assert retrieved.stdout == mail_store.read("demo", info.key)


def test_curl_smtps_implicit_tls(refservers_smtp: Any, mail_store: MailStore) -> None:
    curl(
        f"smtps://localhost:{refservers_smtp.listeners['tls']}", "--cacert", str(refservers_smtp.core.tls.ca_file),
        "--mail-from", "curl@example.com", "--mail-rcpt", "new@curl.test", "--upload-file", "-", data=MESSAGE,
    )
    assert len(mail_store.messages("new@curl.test")) == 1
