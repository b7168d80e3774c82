"""The ``refservers_tenant`` fixture against this test's own servers: a tenant logs in on
every protocol with its address and password, sees only its own mail and files, its
fault rules fire for it alone, and its cleanup leaves nothing behind. Real clients
(smtplib, poplib, imaplib, ftplib) over sockets; the tenant itself only talks to the
admin API, as it does against a shared `refservers up` (test_tenant_isolation.py)."""

from __future__ import annotations

import ftplib
import imaplib
import io
import os
import poplib
import re
import smtplib
from collections.abc import Callable
from pathlib import Path

import paramiko
import pytest

from servers.core import Server
from servers.testing.admin_client import AdminApiError, AdminClient
from servers.testing.tenant import AdminDirectory, Tenant

TIMEOUT = 10


def send(smtp: Server, to: str, subject: str) -> dict[str, tuple[int, bytes]]:
    message = f"From: sender@example.org\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nfor {to}\r\n"
    with smtplib.SMTP(smtp.probe_host, smtp.port, timeout=TIMEOUT) as client:
        return client.sendmail("sender@example.org", [to], message)


def pop3_count(pop3: Server, login: str, password: str) -> int:
    client = poplib.POP3(pop3.probe_host, pop3.port, timeout=TIMEOUT)
    try:
        client.user(login)
        client.pass_(password)
        count = int(client.stat()[0])
        client.quit()
        return count
    finally:
        client.close()


def another_tenant(tenant: Tenant) -> Tenant:
    """A second tenant on the same admin APIs, as a parallel test would have."""
    return Tenant.new(tenant.admins, "other")


def test_a_tenant_is_one_address_that_logs_in_everywhere_and_receives_its_mail(
    refservers_start: Callable[..., Server], refservers_tenant: Tenant
) -> None:
    smtp, pop3, imap, ftp = (refservers_start(name) for name in ("smtp", "pop3", "imap", "ftp"))
    tenant = refservers_tenant
    assert tenant.address == tenant.login == tenant.user
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    assert re.fullmatch(rf"t-{worker}-[0-9a-f]{{8}}@example\.com", tenant.address)
    assert tenant.password not in (tenant.address, "")
    assert tenant.password not in repr(tenant)  # failure reports show the tenant, never its password

    assert send(smtp, tenant.address, "hello tenant") == {}
    assert send(smtp, "someone.else@example.com", "hello tenant") == {}
    mail = tenant.wait_for_mail(subject="hello tenant", timeout=TIMEOUT)
    assert mail.subject == "hello tenant"
    assert [m.id for m in tenant.messages()] == [mail.id]  # someone.else's copy is not the tenant's

    assert pop3_count(pop3, tenant.login, tenant.password) == 1
    with imaplib.IMAP4(imap.probe_host, imap.port, timeout=TIMEOUT) as client:
        client.login(tenant.login, tenant.password)
        assert client.select("INBOX") == ("OK", [b"1"])
        client.logout()
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect(ftp.probe_host, ftp.port)
        client.login(tenant.login, tenant.password)
        client.storbinary("STOR report.txt", io.BytesIO(b"mine"))
        client.quit()
    assert {"path": "/report.txt", "size": 4}.items() <= next(f for f in tenant.files() if f["path"] == "/report.txt").items()


def test_a_tenant_made_before_its_servers_start_can_log_in(
    refservers_tenant: Tenant, refservers_start: Callable[..., Server]
) -> None:
    # The tenant is added through the admin API while no server that logs users in runs.
    pop3 = refservers_start("pop3")
    assert pop3_count(pop3, refservers_tenant.login, refservers_tenant.password) == 0
    with pytest.raises(poplib.error_proto):
        pop3_count(pop3, refservers_tenant.login, "not the password")


def test_fault_rules_of_a_tenant_fire_for_it_alone(
    refservers_start: Callable[..., Server], refservers_tenant: Tenant
) -> None:
    smtp, pop3 = refservers_start("smtp"), refservers_start("pop3")
    mine, theirs = refservers_tenant, another_tenant(refservers_tenant)
    try:
        rcpt_rule = mine.add_fault("smtp", "error", "RCPT*", {"reply": "452 4.2.2 tenant mailbox full"})
        mine.add_fault("pop3", "error", "PASS*", {"reply": "-ERR [AUTH] tenant locked"})
        assert {rule["id"] for rule in mine.faults()} == set(mine.fault_ids) == {rcpt_rule, *mine.fault_ids}
        assert theirs.faults() == []

        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(smtp, mine.address, "refused")
        assert refused.value.recipients[mine.address] == (452, b"4.2.2 tenant mailbox full")
        assert send(smtp, theirs.address, "delivered") == {}
        assert theirs.wait_for_mail("delivered", timeout=TIMEOUT).subject == "delivered"
        with pytest.raises(poplib.error_proto, match="tenant locked"):
            pop3_count(pop3, mine.login, mine.password)
        assert pop3_count(pop3, theirs.login, theirs.password) == 1

        fired = smtp.journal.events(server="smtp", kind="fault") + pop3.journal.events(server="pop3", kind="fault")
        assert {event.details["user"] for event in fired} == {mine.address}

        mine.remove_fault(rcpt_rule)
        assert send(smtp, mine.address, "after the rule") == {}
        assert mine.wait_for_mail("after the rule", timeout=TIMEOUT).subject == "after the rule"
    finally:
        theirs.cleanup()


def test_waiting_for_mail_sees_only_the_tenants_own(
    refservers_start: Callable[..., Server], refservers_tenant: Tenant
) -> None:
    smtp = refservers_start("smtp")
    # Another tenant's address that contains this one's: a substring filter would match it.
    neighbour = f"x{refservers_tenant.address}"
    assert send(smtp, neighbour, "same subject") == {}
    with pytest.raises(TimeoutError, match=refservers_tenant.address):
        refservers_tenant.wait_for_mail("same subject", timeout=1)
    assert refservers_tenant.messages() == []


def test_cleanup_removes_the_tenants_faults_mail_files_and_user(
    refservers_start: Callable[..., Server], refservers_tenant: Tenant
) -> None:
    smtp, pop3, ftp, admin = (refservers_start(name) for name in ("smtp", "pop3", "ftp", "admin"))
    tenant = another_tenant(refservers_tenant)
    tenant.add_fault("ftp", "error", "DELE *")
    assert send(smtp, tenant.address, "to be removed") == {}
    tenant.wait_for_mail("to be removed", timeout=TIMEOUT)
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect(ftp.probe_host, ftp.port)
        client.login(tenant.login, tenant.password)
        client.storbinary("STOR left.txt", io.BytesIO(b"x"))
        client.quit()
    home = ftp.core.store("files").home(tenant.address)
    assert (home / "left.txt").is_file()

    tenant.cleanup()
    api = AdminClient(admin.url)
    assert [rule for rule in api.get("/api/v1/faults")["faults"] if rule["user"] == tenant.address] == []
    assert api.get("/api/v1/messages", user=tenant.address)["messages"] == []
    assert tenant.address not in [user["name"] for user in api.get("/api/v1/users")["users"]]
    assert not (home / "left.txt").exists()
    with pytest.raises(poplib.error_proto):
        pop3_count(pop3, tenant.login, tenant.password)
    # The fixture's own tenant is untouched by another's cleanup.
    assert pop3_count(pop3, refservers_tenant.login, refservers_tenant.password) == 0


class TestUnderTheRejectPolicy:
    @pytest.fixture
    def refservers_settings(self) -> list[str]:
        return ["mail.unknown_recipients=reject"]

    def test_a_tenant_still_receives_its_mail(self, refservers_start: Callable[..., Server], refservers_tenant: Tenant) -> None:
        smtp = refservers_start("smtp")
        assert send(smtp, refservers_tenant.address, "still mine") == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send(smtp, "stranger@example.com", "refused")
        assert refservers_tenant.wait_for_mail("still mine", timeout=TIMEOUT).subject == "still mine"


def test_a_refused_fault_rule_names_the_field(refservers_start: Callable[..., Server], refservers_tenant: Tenant) -> None:
    refservers_start("smtp")
    with pytest.raises(AdminApiError, match="params.secs") as refused:
        refservers_tenant.add_fault("smtp", "delay", params={"secs": 1})
    assert refused.value.status == 400
    assert refservers_tenant.fault_ids == {}


def test_admin_apis_of_remote_targets_come_from_the_environment() -> None:
    shared = AdminDirectory.from_env({
        "REFSERVERS_TARGET_SMTP": "127.0.0.1:2525",
        "REFSERVERS_TARGET_POP3": "127.0.0.1:2110",
        "REFSERVERS_TARGET_ADMIN": "127.0.0.1:9025",
    })
    assert shared.url("smtp") == shared.url("pop3") == "http://127.0.0.1:9025"
    assert shared.urls() == ["http://127.0.0.1:9025"]
    with pytest.raises(LookupError, match="REFSERVERS_TARGET_FTP_ADMIN"):
        shared.url("ftp")  # not a remote target here

    compose = AdminDirectory.from_env({
        "REFSERVERS_TARGET": "container",
        "REFSERVERS_TARGET_SMTP_ADMIN": "127.0.0.1:19002",
        "REFSERVERS_TARGET_POP3_ADMIN": "[::1]:19003",
    })
    assert compose.url("smtp") == "http://127.0.0.1:19002"
    assert compose.url("pop3") == "http://[::1]:19003"
    assert compose.url("ftp") == "http://127.0.0.1:8025"  # the all-in-one image's admin port
    assert compose.urls(["smtp", "pop3", "imap"]) == ["http://127.0.0.1:19002", "http://[::1]:19003", "http://127.0.0.1:8025"]

    assert AdminDirectory.from_env({"REFSERVERS_TARGET_SMTP": "127.0.0.1:2525"}).urls() == []
    # An admin API alone is no target: the servers run in-process, with their own.
    assert AdminDirectory.from_env({"REFSERVERS_TARGET_ADMIN": "127.0.0.1:9025"}).urls() == []


def test_a_tenant_logs_in_on_sftp_and_its_faults_there_are_its_own(
    refservers_start: Callable[..., Server], refservers_tenant: Tenant, tmp_path: Path
) -> None:
    sftp = refservers_start("sftp")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sftp.known_hosts_line())
    mine, theirs = refservers_tenant, another_tenant(refservers_tenant)
    try:
        theirs.add_fault("sftp", "error", "login *")
        theirs.add_fault("sftp", "error", "WRITE *", {"status": "permission_denied"})
        with paramiko.SSHClient() as client:
            client.load_host_keys(str(known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(sftp.probe_host, sftp.port, mine.login, mine.password, look_for_keys=False, allow_agent=False, timeout=TIMEOUT)
            with client.open_sftp() as session:
                session.putfo(io.BytesIO(b"over ssh"), "upload.txt")
        assert "/upload.txt" in {entry["path"] for entry in mine.files()}
        with paramiko.SSHClient() as client:
            client.load_host_keys(str(known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            with pytest.raises(paramiko.AuthenticationException):
                client.connect(sftp.probe_host, sftp.port, theirs.login, theirs.password, look_for_keys=False, allow_agent=False, timeout=TIMEOUT)
    finally:
        theirs.cleanup()


def test_messages_lists_all_of_the_tenants_mail_beyond_a_first_page(
    refservers_start: Callable[..., Server], refservers_tenant: Tenant
) -> None:
    smtp = refservers_start("smtp")
    count = 51  # Mailpit's list pages 50 at a time
    with smtplib.SMTP(smtp.probe_host, smtp.port, timeout=TIMEOUT) as client:
        for number in range(count):
            client.sendmail("sender@example.org", [refservers_tenant.address], f"Subject: n{number}\r\n\r\nbody\r\n")
    refservers_tenant.wait_for_mail("n50", timeout=TIMEOUT)
    assert len(refservers_tenant.messages()) == count
    assert len(refservers_tenant.messages(limit=5)) == 5
