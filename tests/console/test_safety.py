"""Hostile mail must not run script in the console, and the console must not reach
beyond loopback: every request the page makes is recorded and checked."""

from __future__ import annotations

import json
import re
import urllib.request
from urllib.parse import urlsplit

from playwright.sync_api import expect

HOSTILE_SUBJECT = "<img src=x onerror=\"window.__pwned='subject'\"><script>window.__pwned='subject'</script>"
HOSTILE_HTML = """<h1>Totally normal</h1>
<script>top.__pwned = 'script'; parent.__pwned = 'script';</script>
<img src="nowhere.png" onerror="top.__pwned='onerror'">
<a id="js" href="javascript:top.__pwned='javascript-link'">click me</a>
<svg onload="top.__pwned='svg-onload'"><script>top.__pwned='svg-script'</script></svg>
<iframe srcdoc="<script>top.__pwned='nested'</script>"></iframe>
<img src="https://tracker.example.net/pixel.gif" alt="remote pixel">
<form action="https://evil.example.net/"><button>go</button></form>
"""
SVG_ATTACHMENT = b'<svg xmlns="http://www.w3.org/2000/svg" onload="top.__pwned=\'svg-file\'"><script>top.__pwned=\'svg-file\'</script></svg>'
HTML_ATTACHMENT = b"<html><body><script>top.__pwned='html-file'</script></body></html>"
HOSTILE_FILENAME = '"><img src=x onerror=top.__pwned=\'name\'>.svg'


def loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in ("127.0.0.1", "localhost", "::1")


def test_hostile_mail_runs_no_script_in_the_console(console, page, send_mail):
    send_mail(
        HOSTILE_SUBJECT,
        text="<script>top.__pwned='text'</script>",
        html=HOSTILE_HTML,
        attachments=((HOSTILE_FILENAME, "image/svg+xml", SVG_ATTACHMENT), ("page.html", "text/html", HTML_ATTACHMENT)),
        sender='"<script>top.__pwned=1</script>" <evil@example.com>',
    )
    page.goto(console.url + "/")
    subject = page.get_by_role("link", name=HOSTILE_SUBJECT)
    expect(subject).to_be_visible()  # shown as the text it is
    assert page.locator("table img, table script").count() == 0
    subject.click()
    expect(page.get_by_role("heading", name=HOSTILE_SUBJECT)).to_be_visible()
    frame = page.frame_locator("iframe[title='Message HTML']")
    expect(frame.get_by_role("heading", name="Totally normal")).to_be_visible()
    frame.locator("#js").click()
    for tab in ("Text", "Headers", "Raw", "Attachments (2)"):
        page.get_by_role("tab", name=tab).click()
    expect(page.get_by_role("link", name=f"Download {HOSTILE_FILENAME}")).to_be_visible()
    expect(page.get_by_role("link", name="Download page.html")).to_be_visible()
    assert page.locator("main [role=tabpanel] img, main [role=tabpanel] script").count() == 0
    page.get_by_role("tab", name="HTML").click()
    page.get_by_role("button", name="Load remote images").click()
    expect(frame.get_by_role("heading", name="Totally normal")).to_be_visible()
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.title").startswith(HOSTILE_SUBJECT)


def test_the_console_makes_no_request_beyond_loopback(console, page, send_mail, refservers_start):
    for name in ("ftp", "sftp", "http"):
        refservers_start(name)
    send_mail(
        "Remote content inside",
        html=(
            '<html><head><base href="https://base.example.net/"><link rel="stylesheet" href="https://cdn.example.net/x.css">'
            "<style>@import url('https://cdn.example.net/y.css'); body { background: url(//cdn.example.net/bg.png) }</style>"
            '<meta http-equiv="refresh" content="0; url=https://refresh.example.net/"></head>'
            '<body><p>pixel</p><img src="https://tracker.example.net/p.gif"><img src="relative.gif">'
            '<img srcset="a.png 1x, https://tracker.example.net/2x.png 2x">'
            '<div style="background-image: url(&quot;https://tracker.example.net/div.png&quot;)">styled</div>'
            '<table background="http://tracker.example.net/t.png"><tr><td>old</td></tr></table>'
            '<video poster="https://tracker.example.net/poster.png"></video></body></html>'
        ),
    )
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(console.url + "/")
    page.get_by_role("link", name="Remote content inside").click()
    expect(page.frame_locator("iframe[title='Message HTML']").get_by_text("pixel")).to_be_visible()
    expect(page.get_by_text("7 remote references are blocked")).to_be_visible()
    for view in ("Traffic", "Files", "Faults", "Servers", "Inbox"):
        page.get_by_role("link", name=view).click()
        expect(page.get_by_role("link", name=view)).to_have_attribute("aria-current", "page")
    assert requests, "the recorder saw nothing"
    assert any(re.search(r"/console/app\.js$", url) for url in requests)
    outside = [url for url in requests if not loopback(url)]
    assert outside == []


def test_attachments_and_the_html_view_opened_in_a_tab_run_no_script(console, page, send_mail):
    send_mail(
        "Attachments opened directly",
        html="<p>view</p><script>window.__pwned='view'</script><img src=x onerror=\"window.__pwned='view-onerror'\">",
        attachments=(("evil.svg", "image/svg+xml", SVG_ATTACHMENT.replace(b"top.", b"window.")),
                     ("page.html", "text/html", HTML_ATTACHMENT.replace(b"top.", b"window."))),
    )
    with urllib.request.urlopen(console.url + "/api/v1/messages", timeout=10) as reply:
        (summary,) = json.load(reply)["messages"]
    with urllib.request.urlopen(f"{console.url}/api/v1/message/{summary['ID']}", timeout=10) as reply:
        parts = {part["FileName"]: part["PartID"] for part in json.load(reply)["Attachments"]}
    for url in (
        f"{console.url}/api/v1/message/{summary['ID']}/part/{parts['evil.svg']}",
        f"{console.url}/api/v1/message/{summary['ID']}/part/{parts['page.html']}",
        f"{console.url}/view/{summary['ID']}.html",
    ):
        response = page.goto(url)
        assert response.headers["content-security-policy"] == "sandbox"
        assert page.evaluate("window.__pwned") is None, url
