"""Fixed bodies the httpbin endpoints serve: the landing page at /, /html, /xml, /json,
/robots.txt, /deny, /encoding/utf8, /forms/post, /feed.rss and the /image/* pictures.

Everything is in memory so the server needs no data files. The PNG is built here
(a valid 16x16 image, written with zlib per the PNG spec); the JPEG and WebP are the
16x16 Python logos from CPython's test data (PSF licence), embedded as base64.
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Iterable


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour truecolour PNG (RFC 2083): signature, IHDR, IDAT, IEND."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    row = b"\x00" + bytes(rgb) * width  # filter type 0 per scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


PNG = _png(16, 16, (0x2A, 0x6F, 0xDB))

JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsO"
    "CwkJDRENDg8QEBEQCgwSExIQEw8QEBD/2wBDAQMDAwQDBAgEBAgQCwkLEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ"
    "EBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBD/wAARCAAQABADASIAAhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAA"
    "BwQF/8QAJBAAAQQBBAICAwAAAAAAAAAAAQIDBAYFBwgSExEiABQJMTL/xAAVAQEBAAAAAAAAAAAAAAAAAAAABv/E"
    "ACMRAAECBQMFAAAAAAAAAAAAAAECEQMEBQYhABIxFRZhgeH/2gAMAwEAAhEDEQA/ABSm0mobc8HmExLUlRzzEWPk"
    "JWW+ulrsaUVAseUgslSlH9LKuPryIKuWPZdskzXmm3fX5m2nF4GlVxx/HOpx4ks51+MiU/Iaad7UcUo4tILoS4kq"
    "cWkezS0hO/HvuRp0rO6hWnWO1UisZVuFi4GFeyEpmGepa5S5SWVPuciFKRFLgSrwetnyPIB+Vb4N9mKhQMzo5po9"
    "XLdDs9d6ZVix2VEhiL9kuNPxw2gEKcDQ/rs8AuA8VAe0vdl7VOYn+27flGAUgmITjbhSmCg3BYlyeWDkMolvw4KO"
    "p1KM6iCNvngZHwetf//Z"
)

WEBP = base64.b64decode(
    "UklGRqgBAABXRUJQVlA4WAoAAAAQAAAADwAADwAAQUxQSMMAAAABJ6KokSTleucYX+ffKpmImP90cY3gJjDi4Yt3"
    "MsjBEVyDKzDosHgVjnhRNcEIDAJPkqBqsFUZHNa2bUYvTsZ2PLbtd/uvKa4hov9J0f2PkPe6REkkGzolkTTzFG0O"
    "x9PlFiD0CxS+kOGDtxoynjaCfx0pfk52CPuInrOR75lzRugygtv4zEiy90UwfSD9NheMITJWLaXWayO8XeOlWRXV"
    "nIGk2W6WdYoYMQ+KqixQNPowgt+6a1BSKbUtz+lUFAoBAAAAVlA4IL4AAACQAgCdASoQABAAAwA0JbACdDBPCIUM"
    "fAMdCCz96AD+/XSg/QKbH4r3Q3ycN/bSDK/T/zVo4u6nvclvG/SqxWOuup+XhN9BojvaW+Tv+MvxvX/hr/o/5Qns"
    "9LtmX/+qKdl/yWznhuasl7nkxvSTI4xf3Y85VSB/lU/8Ofj/b9JrA+ifvIOYZm2x1RP/dhfmsf5diuSfR7+z+r/+"
    "HR3zEo/+XM/B+vkYw73Pzx+ROaAB/ZoBSzEs3rzZe6qsAAAA"
)

SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100" viewBox="0 0 100 100">
  <title>refservers</title>
  <rect width="100" height="100" rx="12" fill="#2a6fdb"/>
  <circle cx="50" cy="50" r="28" fill="#ffffff"/>
</svg>
"""

# name -> (content type, body); /image picks by the Accept header in this order.
IMAGES: dict[str, tuple[str, bytes]] = {
    "webp": ("image/webp", WEBP),
    "svg": ("image/svg+xml", SVG),
    "jpeg": ("image/jpeg", JPEG),
    "png": ("image/png", PNG),
}

HTML = b"""<!DOCTYPE html>
<html>
  <head><meta charset="utf-8"><title>Herman Melville - Moby-Dick</title></head>
  <body>
    <h1>Herman Melville - Moby-Dick</h1>
    <div>
      <p>Availing himself of the mild, summer-cool weather that now reigned in these
      latitudes, and in preparation for the peculiarly active pursuits shortly to be
      anticipated, Perth, the begrimed, blistered old blacksmith, had not removed his
      portable forge to the hold again, after concluding his contributory work for
      Ahab's leg, but still retained it on deck, fast lashed to ringbolts by the
      foremast.</p>
    </div>
  </body>
</html>
"""

SLIDESHOW_JSON = {
    "slideshow": {
        "author": "Yours Truly",
        "date": "date of publication",
        "slides": [
            {"title": "Wake up to WonderWidgets!", "type": "all"},
            {
                "items": ["Why <em>WonderWidgets</em> are great", "Who <em>buys</em> WonderWidgets"],
                "title": "Overview",
                "type": "all",
            },
        ],
        "title": "Sample Slide Show",
    }
}

XML = b"""<?xml version='1.0' encoding='us-ascii'?>
<!--  A SAMPLE set of slides  -->
<slideshow title="Sample Slide Show" date="Date of publication" author="Yours Truly">
    <!-- TITLE SLIDE -->
    <slide type="all">
      <title>Wake up to WonderWidgets!</title>
    </slide>
    <!-- OVERVIEW -->
    <slide type="all">
        <title>Overview</title>
        <item>Why <em>WonderWidgets</em> are great</item>
        <item/>
        <item>Who <em>buys</em> WonderWidgets</item>
    </slide>
</slideshow>
"""

ROBOTS_TXT = b"User-agent: *\nDisallow: /deny\n"

DENY = b"""
          .-''''''-.
        .' _      _ '.
       /   O      O   \\
      :                :
      |                |
      :       __       :
       \\  .-"`  `"-.  /
        '.          .'
          '-......-'
     YOU SHOULDN'T BE HERE
"""

UTF8_HTML = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Unicode Demo</title></head>
<body>
<h1>Unicode Demo</h1>
<p>Mathematics: \u2200x\u2208\u211d: \u2308x\u2309 = \u2212\u230a\u2212x\u230b, \u03b1 \u2227 \u00ac\u03b2 = \u00ac(\u00ac\u03b1 \u2228 \u03b2)</p>
<p>Greek: \u03a3\u1f72 \u03b3\u03bd\u03c9\u03c1\u1f77\u03b6\u03c9 \u1f00\u03c0\u1f78 \u03c4\u1f74\u03bd \u03ba\u03cc\u03c8\u03b7</p>
<p>Runes: \u16bb\u16d6 \u16b3\u16b9\u16ab\u16a6 \u16a6\u16ab\u16cf</p>
<p>Japanese: \u3044\u308d\u306f\u306b\u307b\u3078\u3068\u3061\u308a\u306c\u308b\u3092</p>
<p>Emoji: \U0001F600 \U0001F680 \u2615</p>
</body>
</html>
""".encode()

FORMS_POST = b"""<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Pizza order</title></head>
<body>
<form method="post" action="/post">
  <p><label>Customer name: <input name="custname"></label></p>
  <p><label>Telephone: <input type=tel name="custtel"></label></p>
  <p><label>E-mail address: <input type=email name="custemail"></label></p>
  <fieldset>
    <legend> Pizza Size </legend>
    <p><label> <input type=radio name=size value="small"> Small </label></p>
    <p><label> <input type=radio name=size value="medium"> Medium </label></p>
    <p><label> <input type=radio name=size value="large"> Large </label></p>
  </fieldset>
  <fieldset>
    <legend> Pizza Toppings </legend>
    <p><label> <input type=checkbox name="topping" value="bacon"> Bacon </label></p>
    <p><label> <input type=checkbox name="topping" value="cheese"> Extra Cheese </label></p>
    <p><label> <input type=checkbox name="topping" value="onion"> Onion </label></p>
  </fieldset>
  <p><label>Preferred delivery time: <input type=time min="11:00" max="21:00" step="900" name="delivery"></label></p>
  <p><label>Delivery instructions: <textarea name="comments"></textarea></label></p>
  <p><button>Submit order</button></p>
</form>
</body>
</html>
"""

UPLOAD_FORM = b"""<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Upload</title></head>
<body>
<form method="post" action="/upload" enctype="multipart/form-data">
  <p><input type="file" name="file" multiple></p>
  <p><button>Upload</button></p>
</form>
</body>
</html>
"""


def rss_feed(base_url: str) -> bytes:
    """A small RSS 2.0 channel (https://www.rssboard.org/rss-specification) linking back here."""
    items = [
        ("Reference servers for local testing", "/html", "Tue, 03 Jun 2025 09:00:00 GMT", "An HTML page."),
        ("A JSON document", "/json", "Mon, 02 Jun 2025 09:00:00 GMT", "The sample slideshow as JSON."),
        ("An XML document", "/xml", "Sun, 01 Jun 2025 09:00:00 GMT", "The sample slideshow as XML."),
    ]
    entries = "".join(
        f"""    <item>
      <title>{title}</title>
      <link>{base_url}{path}</link>
      <guid isPermaLink="true">{base_url}{path}</guid>
      <pubDate>{date}</pubDate>
      <description>{text}</description>
    </item>
"""
        for title, path, date, text in items
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>refservers sample feed</title>
    <link>{base_url}/</link>
    <description>A fixed RSS 2.0 feed for testing feed readers.</description>
    <language>en</language>
    <atom:link href="{base_url}/feed.rss" rel="self" type="application/rss+xml"/>
{entries}  </channel>
</rss>
""".encode()


def index_page(routes: Iterable[tuple[tuple[str, ...], str, str]]) -> bytes:
    """httpbin's legacy landing page (its title, httpbin(1)), listing (methods, path, summary) rows."""
    rows = "".join(
        f"  <li><code>{html.escape(' '.join(methods))} {html.escape(path)}</code> {html.escape(summary)}</li>\n"
        for methods, path, summary in routes
    )
    return f"""<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>httpbin(1): HTTP Client Testing Service</title></head>
<body>
<h1>httpbin(1): HTTP Client Testing Service</h1>
<p>refservers' HTTP server answers httpbin's endpoints (same paths, same JSON), plus a few of its own.
<code>{{name}}</code> is one path segment, <code>{{name*}}</code> the rest of the path.</p>
<h2>ENDPOINTS</h2>
<ul>
{rows}</ul>
</body>
</html>
""".encode()
