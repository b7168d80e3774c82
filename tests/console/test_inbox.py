"""The inbox and message views in a real browser (Debian's chromium via Playwright):
live arrival over the WebSocket, the message's views, downloads, search, delete."""

from __future__ import annotations

import json
import re
import urllib.request

from playwright.sync_api import expect

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e5270ddf0000000049454e44ae426082"
)


def message_count(admin) -> int:
    with urllib.request.urlopen(admin.url + "/api/v1/messages?limit=1", timeout=10) as reply:
        body = json.load(reply)
    return body.get("messages_count", body.get("total"))


def test_a_message_sent_over_smtp_appears_live_over_the_websocket(console, page, send_mail):
    with page.expect_websocket(lambda socket: socket.url.endswith("/api/events")) as socket_info:
        page.goto(console.url + "/")
    socket = socket_info.value
    expect(page.get_by_role("link", name="Inbox")).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("No messages yet")).to_be_visible()
    with socket.expect_event("framereceived", lambda payload: json.loads(payload).get("Type") == "new") as frame:
        send_mail("Arrives while you look")
    assert json.loads(frame.value)["Data"]["Subject"] == "Arrives while you look"
    expect(page.get_by_role("link", name="Arrives while you look")).to_be_visible(timeout=3000)

    # a deletion by another client shows too
    request = urllib.request.Request(
        console.url + "/api/v1/messages", data=b"{}", method="DELETE", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=10).close()
    expect(page.get_by_text("No messages yet")).to_be_visible(timeout=3000)


def test_message_html_text_headers_raw_and_attachment_views(console, page, send_mail, tmp_path):
    send_mail(
        "Quarterly report",
        text="The plain text part.",
        html="<h1>Report heading</h1><p style='color: green'>In <b>HTML</b>.</p>",
        attachments=(("chart.png", "image/png", PNG), ("data.csv", "text/csv", b"a,b\n1,2\n")),
        sender="Reporter <reports@example.com>",
    )
    page.goto(console.url + "/")
    page.get_by_role("link", name="Quarterly report").click()
    expect(page).to_have_url(re.compile(r"#/message/"))
    expect(page.get_by_role("heading", name="Quarterly report")).to_be_visible()
    frame = page.frame_locator("iframe[title='Message HTML']")
    expect(frame.get_by_role("heading", name="Report heading")).to_be_visible()
    sandbox = page.locator("iframe[title='Message HTML']").get_attribute("sandbox")
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox

    envelope = page.get_by_role("region", name="SMTP envelope")
    expect(envelope).to_contain_text("reports@example.com")
    expect(envelope).to_contain_text("demo@example.com")
    expect(envelope).to_contain_text("127.0.0.1")
    hints = page.get_by_role("region", name="Read it over IMAP and POP3")
    expect(hints).to_contain_text("imap://demo@")
    expect(hints).to_contain_text("pop3://demo@")

    page.get_by_role("tab", name="Text").click()
    expect(page.get_by_role("tabpanel")).to_contain_text("The plain text part.")
    page.get_by_role("tab", name="Headers").click()
    headers = page.get_by_role("table", name="Headers")
    expect(headers.get_by_role("row", name=re.compile(r"^Subject Quarterly report"))).to_be_visible()
    page.get_by_role("tab", name="Raw").click()
    raw = page.get_by_label("Raw source")
    expect(raw).to_contain_text("Subject: Quarterly report")
    expect(raw).to_contain_text("Content-Type: multipart/mixed")

    page.get_by_role("tab", name=re.compile("Attachments")).click()
    expect(page.get_by_role("img", name="Preview of chart.png")).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download data.csv").click()
    download = download_info.value
    assert download.suggested_filename == "data.csv"
    saved = tmp_path / "data.csv"
    download.save_as(saved)
    assert saved.read_bytes().replace(b"\r\n", b"\n") == b"a,b\n1,2\n"


def test_deep_link_to_a_message_and_keyboard_navigation(console, page, send_mail):
    for subject in ("Oldest", "Middle", "Newest"):
        send_mail(subject)
    page.goto(console.url + "/")
    rows = page.get_by_role("table", name="Messages").locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Newest")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows.nth(1)).to_have_attribute("aria-current", "true")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Middle")).to_be_visible()
    link = page.url
    page.goto("about:blank")
    page.goto(link)
    expect(page.get_by_role("heading", name="Middle")).to_be_visible()


def test_search_uses_the_api_syntax(console, page, send_mail):
    send_mail("Invoice 1001", sender="billing@shop.example")
    send_mail("Welcome aboard", sender="hello@community.example")
    page.goto(console.url + "/")
    expect(page.get_by_role("link", name="Welcome aboard")).to_be_visible()
    page.get_by_role("searchbox", name="Search").fill("from:billing@shop.example")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Invoice 1001")).to_be_visible()
    expect(page.get_by_role("link", name="Welcome aboard")).to_have_count(0)
    page.get_by_role("searchbox", name="Search").fill("subject:nothing-like-this")
    page.keyboard.press("Enter")
    expect(page.get_by_text("No message matches this search.")).to_be_visible()


def test_delete_one_with_a_confirmation_then_all(console, page, send_mail):
    for subject in ("Keep me", "Drop me", "Also here"):
        send_mail(subject)
    page.goto(console.url + "/")
    page.get_by_role("link", name="Drop me").click()
    questions = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/inbox$"))
    expect(page.get_by_role("link", name="Keep me")).to_be_visible()
    expect(page.get_by_role("link", name="Drop me")).to_have_count(0)
    assert questions == ["Delete this message?"]
    assert message_count(console) == 2

    # the Delete key deletes the current row, after the same question
    rows = page.get_by_role("table", name="Messages").locator("tbody tr")
    expect(rows).to_have_count(2)
    page.keyboard.press("j")
    page.keyboard.press("Delete")
    expect(rows).to_have_count(1)
    assert len(questions) == 2 and message_count(console) == 1

    page.get_by_role("button", name="Delete all").click()
    expect(page.get_by_text("No messages yet")).to_be_visible()
    assert len(questions) == 3 and message_count(console) == 0


def test_a_dismissed_confirmation_deletes_nothing(console, page, send_mail):
    send_mail("Still here")
    page.goto(console.url + "/")
    page.get_by_role("link", name="Still here").click()
    page.on("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("link", name="← Back").click()
    expect(page.get_by_role("link", name="Still here")).to_be_visible()
    assert message_count(console) == 1


def test_mailboxes_list_users_and_created_addresses_with_unread_counts(console, page, send_mail):
    send_mail("For demo one")
    send_mail("For demo two")
    send_mail("For a new address", to="newcomer@elsewhere.example")
    page.goto(console.url + "/")
    mailboxes = page.get_by_role("complementary", name="Mailboxes")
    expect(mailboxes.get_by_role("link", name="All mail 3")).to_be_visible()
    expect(mailboxes.get_by_role("link", name="demo 2")).to_be_visible()
    created = mailboxes.get_by_role("link", name="newcomer@elsewhere.example 1")
    expect(created).to_be_visible()
    created.click()
    rows = page.get_by_role("table", name="Messages").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("For a new address")
    expect(created).to_have_attribute("aria-current", "page")
