"""Shared fixtures for the mail tests: the store behind the running servers, TLS trust."""

from __future__ import annotations

import ssl

import pytest

from servers.core import Core
from servers.mail.store import MailStore


@pytest.fixture
def mail_store(refservers_core: Core) -> MailStore:
    """The MailStore the test's SMTP/POP3/IMAP servers share."""
    return refservers_core.shared(MailStore)


@pytest.fixture
def tls_client(refservers_core: Core) -> ssl.SSLContext:
    """A client context trusting only the generated CA (hostname checked)."""
    return refservers_core.tls.client_context()
