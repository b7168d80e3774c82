"""Fixed documents and images: each parsed or checked as what it claims to be."""

from __future__ import annotations

import json
import struct
import urllib.request
import xml.etree.ElementTree as ElementTree
import zlib
from html.parser import HTMLParser

import pytest
import requests

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _TagCollector()
    parser.feed(html)
    return parser.tags


def test_html_json_xml(refservers_http):
    base = refservers_http.url
    html = requests.get(f"{base}/html", timeout=10)
    assert html.headers["Content-Type"].startswith("text/html")
    assert "Moby-Dick" in html.text and ("h1", {}) in _tags(html.text)
    with urllib.request.urlopen(f"{base}/json") as reply:
        assert json.load(reply)["slideshow"]["title"] == "Sample Slide Show"
    xml = requests.get(f"{base}/xml", timeout=10)
    assert xml.headers["Content-Type"] == "application/xml"
    root = ElementTree.fromstring(xml.content)
    assert root.tag == "slideshow" and len(root.findall("slide")) == 2


def test_robots_deny_and_utf8(refservers_http):
    base = refservers_http.url
    robots = requests.get(f"{base}/robots.txt", timeout=10)
    assert robots.text == "User-agent: *\nDisallow: /deny\n"
    assert "YOU SHOULDN'T BE HERE" in requests.get(f"{base}/deny", timeout=10).text
    utf8 = requests.get(f"{base}/encoding/utf8", timeout=10)
    assert utf8.encoding == "utf-8"
    assert "\u2200x\u2208\u211d" in utf8.text and "\u3044\u308d\u306f" in utf8.text


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        payload = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + payload), f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height = struct.unpack(">II", payload[:8])
        offset += 12 + length
    assert kind == b"IEND"
    return width, height


def test_png_is_a_well_formed_png(refservers_http):
    reply = requests.get(f"{refservers_http.url}/image/png", timeout=10)
    assert reply.headers["Content-Type"] == "image/png"
    assert _png_size(reply.content) == (16, 16)


@pytest.mark.parametrize(
    "kind, content_type, check",
    [
        ("jpeg", "image/jpeg", lambda b: b[:3] == b"\xff\xd8\xff" and b[-2:] == b"\xff\xd9"),
        ("webp", "image/webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP" and struct.unpack("<I", b[4:8])[0] == len(b) - 8),
        ("svg", "image/svg+xml", lambda b: ElementTree.fromstring(b).tag == "{http://www.w3.org/2000/svg}svg"),
    ],
)
def test_other_images(refservers_http, kind, content_type, check):
    reply = requests.get(f"{refservers_http.url}/image/{kind}", timeout=10)
    assert reply.headers["Content-Type"] == content_type
    assert check(reply.content)


def test_image_negotiates_on_accept(refservers_http):
    url = f"{refservers_http.url}/image"
    assert requests.get(url, headers={"Accept": "image/webp"}, timeout=10).headers["Content-Type"] == "image/webp"
    assert requests.get(url, headers={"Accept": "image/*"}, timeout=10).headers["Content-Type"] == "image/png"
    refused = requests.get(url, headers={"Accept": "text/plain"}, timeout=10)
    assert refused.status_code == 406
    assert requests.get(f"{url}/gif", timeout=10).status_code == 404


def test_forms_post_is_a_form_that_posts_to_post(refservers_http):
    page = requests.get(f"{refservers_http.url}/forms/post", timeout=10).text
    forms = [attrs for tag, attrs in _tags(page) if tag == "form"]
    assert forms == [{"method": "post", "action": "/post"}]
    names = {attrs.get("name") for tag, attrs in _tags(page) if tag in ("input", "textarea")}
    assert {"custname", "custtel", "size", "topping", "comments"} <= names


def test_rss_feed_is_rss_2_with_items_linking_back(refservers_http):
    reply = requests.get(f"{refservers_http.url}/feed.rss", timeout=10)
    assert reply.headers["Content-Type"].startswith("application/rss+xml")
    root = ElementTree.fromstring(reply.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None and channel.findtext("title")
    links = [item.findtext("link") for item in channel.findall("item")]
    assert links and all(link.startswith(refservers_http.url) for link in links)
    assert requests.get(links[0], timeout=10).status_code == 200


def test_index_is_httpbins_landing_page_listing_the_endpoints(refservers_http):
    reply = requests.get(f"{refservers_http.url}/", timeout=10)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>httpbin(1): HTTP Client Testing Service</title>" in reply.text
    assert "GET /base64/{value}" in reply.text and "/digest-auth/{qop}/{user}/{password}/{algorithm}/{stale_after}" in reply.text


@pytest.mark.parametrize(
    "value, text",
    [
        ("SFRUUEJJTiBpcyBhd2Vzb21l", "HTTPBIN is awesome"),
        ("0JfQtNGA0LDQstGB0YLQstGD0LksINC80LjRgCE=", "Здравствуй, мир!"),
        ("0JfQtNGA0LDQstGB0YLQstGD0LksINC80LjRgCE%3D", "Здравствуй, мир!"),  # %-encoded padding
        ("_-8", "Incorrect Base64 data try: SFRUUEJJTiBpcyBhd2Vzb21l"),  # not UTF-8 once decoded
    ],
)
def test_base64_decodes_url_safe_base64(refservers_http, value, text):
    reply = requests.get(f"{refservers_http.url}/base64/{value}", timeout=10)
    assert reply.status_code == 200 and reply.content.decode("utf-8") == text
