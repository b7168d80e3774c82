"""servers.testing.containers.RefServersContainer, as a testcontainers user runs it: the
all-in-one image on free host ports, waited on through /health, then real clients."""

from __future__ import annotations

import json
import os
import poplib
import smtplib
import urllib.request

import pytest

# Ryuk (testcontainers' reaper) is an image pulled from a registry, and there is none
# here; the fixture stops its container itself.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
testcontainers = pytest.importorskip("testcontainers")

from servers.testing.containers import RefServersContainer  # noqa: E402


@pytest.fixture(scope="module")
def refservers():
    with RefServersContainer() as container:
        yield container


def test_mail_sent_over_smtp_is_read_over_pop3_and_the_admin_api(refservers):
    host, port = refservers.address("smtp")
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.sendmail("ci@example.test", ["demo@localhost"], b"Subject: from testcontainers\r\n\r\nhello\r\n")
    pop = poplib.POP3(*refservers.address("pop3"), timeout=30)
    try:
        pop.user("demo")
        pop.pass_("demo")
        subjects = [line for index in range(1, len(pop.list()[1]) + 1) for line in pop.retr(index)[1] if line.startswith(b"Subject:")]
    finally:
        pop.quit()
    assert b"Subject: from testcontainers" in subjects
    messages = refservers.admin.get("/api/v1/messages")["messages"]
    assert any(message.get("Subject", message.get("subject")) == "from testcontainers" for message in messages)


def test_every_server_has_a_mapped_url(refservers):
    urls = refservers.urls()
    assert {"http", "smtp", "imap", "ftp", "sftp", "sockets", "admin"} <= set(urls)
    assert urls["sockets"].endswith(f":{refservers.port('sockets', 'echo_port')}")  # the main port: the first
    with urllib.request.urlopen(urls["http"] + "/get?via=testcontainers", timeout=30) as reply:
        assert json.load(reply)["args"] == {"via": "testcontainers"}
    assert refservers.admin.get("/health")["status"] == "ok"
    with pytest.raises(KeyError, match="no smtp nope"):
        refservers.port("smtp", "nope")
