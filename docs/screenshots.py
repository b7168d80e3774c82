"""`make screenshots`: docs/images/{inbox,message,traffic,files}.png of the web console.

Starts SMTP, POP3, IMAP, FTP, SFTP, HTTP and the admin API in this process on free
ports, makes some real traffic (mail over smtplib, an FTP session, HTTP requests, an
SFTP upload), then photographs the console in Debian's chromium, the same browser
the tests drive (tests/console/chromium.py).
"""

from __future__ import annotations

import ftplib
import io
import smtplib
import sys
import tempfile
import urllib.request
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "console"))

import paramiko  # noqa: E402
from chromium import launch_chromium  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from servers import registry  # noqa: E402
from servers.core import Core, load_config  # noqa: E402
from servers.core.config import PORT  # noqa: E402

IMAGES = ROOT / "docs" / "images"
NAMES = ("smtp", "pop3", "imap", "ftp", "sftp", "http")
LOGO = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5270ddf0000000049454e44ae426082"
)


def send(smtp, subject, sender, text, html=None, attachments=(), login=False):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "demo@example.com", subject
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    for name, kind, data in attachments:
        maintype, _, subtype = kind.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        if login:
            client.login("demo", "demo")
        client.send_message(message)


def make_traffic(servers):
    smtp, ftp, sftp, http = servers["smtp"], servers["ftp"], servers["sftp"], servers["http"]
    send(smtp, "Your order #1042 has shipped", "Shop <orders@shop.example>", "Your parcel is on its way.")
    send(smtp, "Password reset", "Accounts <no-reply@app.example>", "Use the link to reset your password.")
    send(
        smtp,
        "Welcome to Example App",
        "Example App <hello@app.example>",
        "Welcome aboard! Confirm your address: http://localhost:3000/confirm?token=abc123",
        html=(
            "<div style='font-family: sans-serif; max-width: 520px'>"
            "<h1 style='color: #2563eb'>Welcome aboard!</h1>"
            "<p>Thanks for signing up. Please confirm your address:</p>"
            "<p><a href='http://localhost:3000/confirm?token=abc123' style='background: #2563eb; color: white; "
            "padding: 8px 16px; border-radius: 6px; text-decoration: none'>Confirm my address</a></p>"
            "<p style='color: #666'>If you did not sign up, ignore this mail.</p></div>"
        ),
        attachments=(("logo.png", "image/png", LOGO), ("terms.pdf", "application/pdf", b"%PDF-1.4 terms")),
        login=True,
    )
    with ftplib.FTP() as client:
        client.connect(ftp.host, ftp.port, timeout=10)
        client.login("demo", "demo")
        client.mkd("reports")
        client.storbinary("STOR reports/q3.csv", io.BytesIO(b"month,total\njuly,10\n" * 50))
        client.nlst()
    for path in ("/get", "/status/418", "/anything/orders/42"):
        try:
            with urllib.request.urlopen(http.url + path, timeout=10) as reply:
                reply.read()
        except urllib.error.HTTPError as error:
            error.close()
    transport = paramiko.Transport((sftp.host, sftp.port))
    try:
        transport.connect(username="demo", password="demo")
        with paramiko.SFTPClient.from_transport(transport) as client:
            with client.open("/reports/summary.txt", "wb") as remote:
                remote.write(b"All figures are in q3.csv.\n")
    finally:
        transport.close()


def main() -> int:
    schema = registry.schema()
    overrides = [f"core.data_dir={tempfile.mkdtemp(prefix='refservers-screenshots-')}", "core.trace=true"]
    overrides += [f"{section}.{o.key}=0" for section, options in schema.items() for o in options if o.kind is PORT]
    core = Core(load_config(schema, env={}, overrides=overrides, renamed=registry.RENAMED_OPTIONS), stores=registry.store_loaders())
    try:
        servers = {name: registry.server_class(name)(core.config[name], core).start() for name in NAMES}
        admin = registry.server_class("admin")(core.config["admin"], core).start()
        make_traffic(servers)
        IMAGES.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 720}, color_scheme="light")
            page.goto(admin.url + "/")
            expect(page.get_by_role("link", name="Welcome to Example App")).to_be_visible()
            page.screenshot(path=IMAGES / "inbox.png")
            page.get_by_role("link", name="Welcome to Example App").click()
            expect(page.frame_locator("iframe[title='Message HTML']").get_by_role("heading", name="Welcome aboard!")).to_be_visible()
            page.screenshot(path=IMAGES / "message.png")
            page.goto(admin.url + "/#/traffic?server=ftp")
            expect(page.get_by_role("list", name="Events").locator("li").first).to_be_visible()
            page.get_by_role("list", name="Events").locator("li", has_text="upload /reports/q3.csv").locator("summary").click()
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=IMAGES / "traffic.png")
            page.goto(admin.url + "/#/files?user=demo")
            expect(page.get_by_role("link", name="Download /reports/q3.csv")).to_be_visible()
            page.screenshot(path=IMAGES / "files.png")
            browser.close()
    finally:
        core.stop_all()
    for name in ("inbox", "message", "traffic", "files"):
        print(IMAGES / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
