"""Browser fixtures for the web console tests: one chromium per xdist worker, a fresh
context (no shared storage) per test, the servers a test asks for, and a helper that
sends mail with smtplib."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from playwright import sync_api  # a missing playwright fails the suite: never skipped

from .chromium import chromium_path, launch_chromium

# Generous for a loaded 2-core machine; the console itself answers in milliseconds.
EXPECT_TIMEOUT_MS = 10_000


@pytest.fixture
def browser() -> Iterator[Any]:
    # One browser per test, not per session: Playwright's sync API keeps an asyncio loop
    # running in the main thread while it lives, and xdist runs other tests in the same
    # worker (telnetlib3's asyncio.run() test failed behind a session-wide browser).
    if chromium_path() is None:
        pytest.fail("the console tests need chromium: apt-get install chromium (.ci/apt-packages.txt)")
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    sync_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    page = context.new_page()
    page.set_default_timeout(EXPECT_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors, f"uncaught errors in the console: {errors}"


@pytest.fixture
def console(refservers_start: Callable[..., Any]) -> Any:
    """The admin API (serving the console) with SMTP, POP3 and IMAP on one core."""
    refservers_start("smtp")
    refservers_start("pop3")
    refservers_start("imap")
    return refservers_start("admin")


@pytest.fixture
def send_mail(refservers_start: Callable[..., Any]) -> Callable[..., EmailMessage]:
    def send(subject: str, text: str = "Hello from the test.", html: str | None = None,
             attachments: tuple[tuple[str, str, bytes], ...] = (), sender: str = "Alice <alice@example.com>",
             to: str = "demo@example.com") -> EmailMessage:
        smtp = refservers_start("smtp")
        message = EmailMessage()
        message["From"] = sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        for filename, content_type, data in attachments:
            maintype, _, subtype = content_type.partition("/")
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            client.send_message(message)
        return message

    return send
