"""GET /api/v1/mailboxes: the store's mailboxes, users and addresses made on delivery."""

from __future__ import annotations

import json
import smtplib
import urllib.request


def test_mailboxes_lists_users_and_created_addresses(refservers_smtp, refservers_admin):
    with smtplib.SMTP(refservers_smtp.host, refservers_smtp.port, timeout=10) as client:
        client.sendmail("a@example.com", ["demo@example.com", "newcomer@elsewhere.example"], b"Subject: hi\r\n\r\nhello\r\n")
    with urllib.request.urlopen(refservers_admin.url + "/api/v1/mailboxes", timeout=10) as reply:
        body = json.load(reply)
    assert body == {
        "mailboxes": [
            {"name": "demo", "account": True},
            {"name": "newcomer@elsewhere.example", "account": True},  # made on delivery ("create")
        ]
    }
    url = refservers_admin.url + "/api/v1/messages?user=newcomer%40elsewhere.example&limit=1"
    with urllib.request.urlopen(url, timeout=10) as reply:
        listed = json.load(reply)
    assert listed["messages_count"] == 1 and listed["messages_unread"] == 1


def test_a_mailbox_left_on_disk_without_an_account_is_listed(refservers_smtp, refservers_admin, refservers_core):
    from servers.mail.store import MailStore

    store = refservers_core.shared(MailStore)
    store.ensure_user("from-before-a-restart")
    with urllib.request.urlopen(refservers_admin.url + "/api/v1/mailboxes", timeout=10) as reply:
        body = json.load(reply)
    assert {"name": "from-before-a-restart", "account": False} in body["mailboxes"]
