"""Traffic, files, faults and servers views in a real browser, each checked against
real clients: ftplib, urllib, paramiko's SFTP, smtplib."""

from __future__ import annotations

import ftplib
import re
import smtplib
import time
import urllib.error
import urllib.request

import paramiko
import pytest
from playwright.sync_api import expect


def test_traffic_shows_an_ftp_login_and_an_http_request_live(refservers_start, page):
    ftp, http = refservers_start("ftp"), refservers_start("http")
    admin = refservers_start("admin")
    page.goto(admin.url + "/#/traffic")
    events = page.get_by_role("list", name="Events")
    expect(page.get_by_role("combobox", name="Server")).to_contain_text("http")
    with ftplib.FTP() as client:
        client.connect(ftp.host, ftp.port, timeout=10)
        client.login("demo", "demo")
        client.nlst()
    with urllib.request.urlopen(http.url + "/anything/from-the-test", timeout=10) as reply:
        reply.read()
    login = events.locator("li", has_text=re.compile(r"login demo accepted"))
    expect(login).to_be_visible(timeout=3000)
    expect(login.locator(".server")).to_have_text("ftp")
    expect(login.locator(".user")).to_have_text("demo")
    command = events.locator("li", has_text="NLST").first
    expect(command.locator(".user")).to_have_text("demo")  # the user stays with the peer's later rows
    request = events.locator("li", has_text="GET /anything/from-the-test → 200")
    expect(request).to_be_visible(timeout=3000)
    expect(request.locator(".server")).to_have_text("http")
    request.locator("summary").click()
    expect(request.locator("pre")).to_contain_text('"method": "GET"')
    # the password never reaches the page
    assert "PASS demo" not in page.content()


def test_traffic_filters_pause_and_deep_link(refservers_start, page):
    ftp, http = refservers_start("ftp"), refservers_start("http")
    admin = refservers_start("admin")
    page.goto(admin.url + "/#/traffic?server=ftp")
    expect(page.get_by_role("combobox", name="Server")).to_have_value("ftp")
    with urllib.request.urlopen(http.url + "/get", timeout=10) as reply:
        reply.read()
    with ftplib.FTP() as client:
        client.connect(ftp.host, ftp.port, timeout=10)
        client.login("demo", "demo")
    events = page.get_by_role("list", name="Events")
    expect(events.locator("li", has_text="login demo accepted")).to_be_visible()
    expect(events.locator("li[data-server=http]")).to_have_count(0)
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_have_attribute("aria-pressed", "true")
    shown = events.locator("li").count()
    with ftplib.FTP() as client:
        client.connect(ftp.host, ftp.port, timeout=10)
        client.login("demo", "demo")
    ftp.journal.wait_for(lambda event: event.kind == "disconnect", since=ftp.journal.last_id - 1, server="ftp")
    assert events.locator("li").count() == shown  # paused: nothing new drawn
    page.get_by_role("button", name="Resume").click()
    expect(events.locator("li", has_text="login demo accepted")).to_have_count(2)
    page.get_by_role("button", name="Clear").click()
    expect(events.locator("li")).to_have_count(0)


@pytest.mark.parametrize("refservers_settings", [["core.trace=true"]])
def test_traffic_shows_wire_lines_with_the_password_masked_when_tracing(refservers_settings, refservers_start, page):
    ftp = refservers_start("ftp")
    admin = refservers_start("admin")
    page.goto(admin.url + "/#/traffic?server=ftp&kind=wire")
    with ftplib.FTP() as client:
        client.connect(ftp.host, ftp.port, timeout=10)
        client.login("demo", "demo")
    events = page.get_by_role("list", name="Events")
    expect(events.locator("li", has_text="« USER demo")).to_be_visible()
    expect(events.locator("li", has_text="» 230")).to_be_visible()
    expect(events.locator("li", has_text="« ****")).to_be_visible()  # FTP masks the whole PASS line
    assert "PASS demo" not in page.content()


def test_files_upload_through_the_console_then_fetch_over_sftp(refservers_files, refservers_start, page, tmp_path):
    admin = refservers_start("admin")
    page.goto(admin.url + "/#/files?user=demo")
    expect(page.get_by_role("combobox", name="User")).to_have_value("demo")
    page.on("dialog", lambda dialog: dialog.accept("reports") if dialog.type == "prompt" else dialog.accept())
    page.get_by_role("button", name="New folder").click()
    expect(page.get_by_role("combobox", name="Upload to folder")).to_have_value("/reports")
    payload = bytes(range(256)) * 40
    page.get_by_label("Upload files").set_input_files(
        files=[{"name": "q3.bin", "mimeType": "application/octet-stream", "buffer": payload}]
    )
    tree = page.get_by_role("region", name="File tree")
    expect(tree.get_by_role("link", name="Download /reports/q3.bin")).to_be_visible()
    # drag and drop: a DataTransfer with a file, dropped on the view
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["dropped text\\n"], "dropped.txt", {type: "text/plain"}));
            const zone = document.querySelector("section.files");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true, cancelable: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }"""
    )
    expect(tree.get_by_role("link", name="Download /reports/dropped.txt")).to_be_visible()

    sftp_server = refservers_files.sftp
    transport = paramiko.Transport((sftp_server.host, sftp_server.port))
    try:
        transport.connect(username="demo", password="demo")
        with paramiko.SFTPClient.from_transport(transport) as sftp:
            with sftp.open("/reports/q3.bin", "rb") as remote:
                assert remote.read() == payload
            with sftp.open("/reports/dropped.txt", "rb") as remote:
                assert remote.read() == b"dropped text\n"
    finally:
        transport.close()
    sftp_server.journal.wait_for(lambda event: event.kind == "file" and event.details.get("path") == "/reports/q3.bin", server="sftp")

    page.reload()
    transfers = page.get_by_role("list", name="Recent transfers of /reports/q3.bin")
    expect(transfers).to_contain_text("sftp")
    expect(transfers).to_contain_text("demo")
    with page.expect_download() as download_info:
        tree.get_by_role("link", name="Download /reports/q3.bin").click()
    saved = tmp_path / "q3.bin"
    download_info.value.save_as(saved)
    assert saved.read_bytes() == payload
    tree.get_by_role("button", name="Delete /reports/dropped.txt").click()
    expect(tree.get_by_role("link", name="Download /reports/dropped.txt")).to_have_count(0)
    assert not (refservers_files.root.home("demo") / "reports" / "dropped.txt").exists()


def test_a_fault_rule_added_in_the_form_makes_smtplib_fail_until_removed(refservers_start, page):
    smtp = refservers_start("smtp")
    admin = refservers_start("admin")
    page.goto(admin.url + "/#/faults")
    form = page.get_by_role("form", name="Add a fault rule")
    form.get_by_label("Server").select_option("smtp")
    form.get_by_label("Action").select_option("error")  # from the schema's actions of smtp
    form.get_by_label("Match").fill("MAIL FROM:*")
    form.get_by_label("reply").fill("554 5.7.1 refused by the console test")  # a field of the action's params
    form.get_by_role("button", name="Add rule").click()
    rules = page.get_by_role("table", name="Fault rules")
    row = rules.get_by_role("row", name=re.compile(r"smtp MAIL FROM:\*"))
    expect(row).to_be_visible()
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.com", ["demo@example.com"], b"Subject: x\r\n\r\nbody\r\n")
    assert refused.value.smtp_code == 554 and b"refused by the console test" in refused.value.smtp_error

    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=re.compile("Remove")).click()
    expect(row).to_have_count(0)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        assert client.sendmail("a@example.com", ["demo@example.com"], b"Subject: x\r\n\r\nbody\r\n") == {}


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("Probability", "2", "probability: expected a number 0-1"),
        ("reply", "hello", "params.reply: expected an SMTP reply"),
    ],
)
def test_a_bad_value_shows_the_api_error_next_to_its_field(refservers_start, page, field, value, error):
    refservers_start("smtp")
    admin = refservers_start("admin")
    page.goto(admin.url + "/#/faults")
    form = page.get_by_role("form", name="Add a fault rule")
    form.get_by_label("Server").select_option("smtp")
    form.get_by_label("Action").select_option("error")
    form.get_by_label(field).fill(value)
    form.get_by_role("button", name="Add rule").click()
    slot = form.locator(f"[data-field='{'params.reply' if field == 'reply' else field.lower()}'] [role=alert]")
    expect(slot).to_contain_text(error)
    expect(page.get_by_role("table", name="Fault rules")).to_contain_text("No fault rules")


def test_a_tcp_proxy_and_a_latency_toxic_from_the_console(refservers_start, page):
    http, proxy = refservers_start("http"), refservers_start("proxy")
    admin = refservers_start("admin")
    page.goto(admin.url + "/#/faults")
    proxy_form = page.get_by_role("form", name="Add a TCP proxy")
    proxy_form.get_by_label("Name").fill("slow-web")
    proxy_form.get_by_label("Upstream").fill(f"127.0.0.1:{http.port}")
    proxy_form.get_by_role("button", name="Add proxy").click()
    proxies = page.get_by_role("table", name="TCP proxies")
    row = proxies.get_by_role("row", name=re.compile(rf"^slow-web \d+ 127\.0\.0\.1:{http.port}"))
    expect(row).to_be_visible()
    port = int(row.locator("td").nth(1).inner_text())
    assert port == proxy.tcp_listeners["slow-web"].route.listen_port

    form = page.get_by_role("form", name="Add a fault rule")
    form.get_by_label("Server").select_option("proxy")
    form.get_by_label("Action").select_option("latency")
    form.get_by_label("Match").fill("slow-web")
    form.get_by_label("latency").fill("1000")
    form.get_by_role("button", name="Add rule").click()
    rule = page.get_by_role("table", name="Fault rules").get_by_role("row", name=re.compile(r"proxy slow-web latency"))
    expect(rule).to_contain_text("latency=1000")

    def timed_get() -> float:
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/get", timeout=10) as reply:
            reply.read()
        return time.monotonic() - started

    assert timed_get() >= 1.0
    page.on("dialog", lambda dialog: dialog.accept())
    rule.get_by_role("button", name=re.compile("Remove")).click()
    expect(rule).to_have_count(0)
    assert timed_get() < 1.0
    row.get_by_role("button", name="Remove proxy slow-web").click()
    expect(row).to_have_count(0)
    assert "slow-web" not in proxy.tcp_listeners


def test_servers_view_lists_every_server_with_its_port(refservers_start, page):
    started = [refservers_start(name) for name in ("smtp", "ftp", "sftp", "http")]
    admin = refservers_start("admin")
    page.goto(admin.url + "/#/servers")
    table = page.get_by_role("table", name="Servers")
    for server in started:
        expect(table.get_by_role("row", name=re.compile(rf"^{server.name} ready {server.port}\b"))).to_be_visible()
    expect(page.get_by_text(started[2].host_key_fingerprint)).to_be_visible()
    expect(table).to_contain_text(f"sftp -P {started[2].port} demo@{started[2].host}")
    expect(table).to_contain_text(f"swaks --server {started[0].host}:{started[0].port}")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CA certificate").click()
    path = download_info.value.path()
    with open(path, "rb") as downloaded:
        assert downloaded.read().startswith(b"-----BEGIN CERTIFICATE-----")


def test_the_theme_follows_the_system_setting_and_the_favicon_is_local(refservers_start, browser):
    admin = refservers_start("admin")
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        try:
            page = context.new_page()
            page.goto(admin.url + "/#/servers")
            expect(page.get_by_role("link", name="Servers")).to_have_attribute("aria-current", "page")
            backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
            icon = page.evaluate("document.querySelector('link[rel=icon]').href")
            assert icon == admin.url + "/console/favicon.svg"
        finally:
            context.close()
    assert backgrounds == {"light": "rgb(255, 255, 255)", "dark": "rgb(13, 17, 23)"}


def test_the_console_works_behind_the_admin_api_basic_auth(refservers_start, browser, send_mail):
    refservers_start("smtp")
    admin = refservers_start("admin", auth="tester:s3cret")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(admin.url + "/", timeout=10).close()
    assert refused.value.code == 401
    refused.value.close()
    context = browser.new_context(http_credentials={"username": "tester", "password": "s3cret"})
    try:
        page = context.new_page()
        page.goto(admin.url + "/")
        expect(page.get_by_text("No messages yet")).to_be_visible()
        send_mail("Behind auth")
        expect(page.get_by_role("link", name="Behind auth")).to_be_visible()
    finally:
        context.close()
