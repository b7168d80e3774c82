"""The HTTP route table: every endpoint of the server in one declarative list.

The httpbin part follows go-httpbin's endpoint set and httpbin.org's JSON shapes
(``args``, ``headers``, ``origin``, ``url``, ``form``, ``files``, ``data``, ``json``) so
code written against httpbin.org works unchanged. The rest (``/upload``,
``/feed.rss``) is ours. Static files (``/static/``) and CGI (``/cgi-bin/``) are
Twisted resources mounted by site.py, not rows here.

Handlers take an :class:`Exchange` and return a Response, a dict (JSON, 200), a
Deferred of either, or STREAMING (they finish the request themselves). Paced replies
(/delay, /drip, /stream) use the reactor's ``callLater``, never a sleep, so one slow
client does not hold up the others.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import uuid
import zlib
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

from twisted.internet.defer import Deferred

from ..core.loop import twisted_reactor
from ..core.web import Route
from . import auth, samples
from .bodies import multipart_parts, parse_body
from .cookies import parse_cookie_header, set_cookie
from .exchange import STREAMING, Exchange, HttpError, Response, json_body, json_response

ANY = ("GET", "POST", "PUT", "PATCH", "DELETE", "TRACE")  # httpbin's list for /anything, /status, /delay...
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
MAX_BYTES = 100 * 1024  # cap for /bytes, /stream-bytes, /range, /drip (as go-httpbin)
MAX_STREAM_LINES = 100
REDIRECT_CODES = (301, 302, 303, 305, 307, 308)

Handler = Callable[[Exchange], Any]


# -- request inspection --------------------------------------------------------------


def get(ex: Exchange) -> Any:
    return ex.basics()


def with_body(ex: Exchange) -> Any:
    parsed = parse_body(ex.header("content-type", "") or "", ex.body)
    return {
        **ex.basics(),
        "data": parsed.data,
        "files": parsed.files,
        "form": parsed.form,
        "json": parsed.json,
    }


def anything(ex: Exchange) -> Any:
    return {**with_body(ex), "method": ex.method}


def headers(ex: Exchange) -> Any:
    return {"headers": ex.headers}


def ip(ex: Exchange) -> Any:
    return {"origin": ex.origin}


def user_agent(ex: Exchange) -> Any:
    return {"user-agent": ex.header("user-agent")}


def new_uuid(ex: Exchange) -> Any:
    return {"uuid": str(uuid.uuid4())}


def index(ex: Exchange) -> Any:
    """``/``: httpbin's legacy landing page, listing this table's endpoints."""
    return Response(200, samples.index_page([(r.methods, r.pattern, r.summary) for r in ROUTES]), "text/html; charset=utf-8")


def decode_base64(ex: Exchange) -> Any:
    """``/base64/{value}``: the URL-safe base64 value decoded as UTF-8 text, or httpbin's hint."""
    try:
        text = base64.urlsafe_b64decode(unquote(ex.params["value"]).encode("utf-8")).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        # httpbin answers 200 with this hint rather than an error status; clients may rely on it.
        text = "Incorrect Base64 data try: SFRUUEJJTiBpcyBhd2Vzb21l"
    return Response(200, text.encode("utf-8"), "text/html; charset=utf-8")


# -- status codes and headers ----------------------------------------------------------


def _status_choice(spec: str) -> int:
    """``418`` or a weighted list ``200:0.5,500:0.5`` (weights default to 1)."""
    codes, weights = [], []
    for item in spec.split(","):
        code_text, _, weight_text = item.partition(":")
        try:
            code, weight = int(code_text), float(weight_text or 1)
        except ValueError:
            raise HttpError(400, f"invalid status {item!r}: expected CODE or CODE:WEIGHT") from None
        # 1xx are interim responses, not final ones: answering with one breaks clients.
        if not 200 <= code <= 599 or weight < 0:
            raise HttpError(400, f"invalid status {item!r}: codes 200-599, weights >= 0")
        codes.append(code)
        weights.append(weight)
    if sum(weights) <= 0:
        raise HttpError(400, "status weights must not all be zero")
    return random.choices(codes, weights)[0]


def status(ex: Exchange) -> Any:
    code = _status_choice(ex.params["codes"])
    reply = Response(code, b"", None)
    if code in REDIRECT_CODES:
        reply.header_list.append(("Location", "/redirect/1"))
    elif code == 401:
        reply.header_list.append(("WWW-Authenticate", 'Basic realm="Fake Realm"'))
    elif code == 407:
        reply.header_list.append(("Proxy-Authenticate", 'Basic realm="Fake Realm"'))
    elif code == 418:
        reply.body, reply.content_type = b"I'm a teapot!\n", "text/plain"
        reply.header_list.append(("X-More-Info", "http://tools.ietf.org/html/rfc2324"))
    return reply


def response_headers(ex: Exchange) -> Any:
    pairs = [(name, value) for name, values in ex.query.items() for value in values]
    body = {name: values[0] if len(values) == 1 else values for name, values in ex.query.items()}
    content_type = ex.arg("Content-Type") or ex.arg("content-type") or "application/json"
    return Response(200, json_body(body), content_type, [p for p in pairs if p[0].lower() != "content-type"])


# -- auth ----------------------------------------------------------------------------


def basic_auth(ex: Exchange, hidden: bool = False) -> Any:
    user, password = ex.params["user"], ex.params["password"]
    if auth.basic_credentials(ex.header("authorization")) == (user, password):
        return {"authenticated": True, "user": user}
    if hidden:
        return Response(404, b"", None)
    return json_response(
        {"authenticated": False}, 401, [("WWW-Authenticate", 'Basic realm="Fake Realm"')]
    )


def hidden_basic_auth(ex: Exchange) -> Any:
    return basic_auth(ex, hidden=True)


def _digest_challenge(qop: str | None, algorithm: str, cookies: list[tuple[str, str]], stale: bool = False) -> Response:
    headers = [("WWW-Authenticate", auth.digest_challenge(qop, algorithm, stale))]
    return Response(401, b"", None, headers + [set_cookie(name, value) for name, value in cookies])


def digest_auth(ex: Exchange) -> Any:
    """httpbin's Digest endpoint, cookies included (its view ``digest_auth``).

    An unknown qop offers both, an unknown algorithm is MD5. The challenge sets the
    cookies ``stale_after`` (from the URL, default ``never``) and ``fake``; each success
    counts ``stale_after`` down, and at ``0``, or when the nonce is the one refused last
    (cookie ``last_nonce``), the answer is a challenge with ``stale=true``.
    ``?require-cookie=true`` refuses a client that does not send the cookies back.
    """
    user, password = ex.params["user"], ex.params["password"]
    qop = ex.params["qop"] if ex.params["qop"] in auth.DIGEST_QOPS else None
    algorithm = ex.params.get("algorithm", "MD5")
    if algorithm not in auth.DIGEST_ALGORITHMS:
        algorithm = "MD5"
    stale_after = ex.params.get("stale_after", "never")
    require_cookie = (ex.arg("require-cookie") or "").lower() in ("1", "t", "true")
    jar = parse_cookie_header(ex.header("cookie"))
    params = auth.digest_params(ex.header("authorization"))
    fake = ("fake", "fake_value")
    if not params or (require_cookie and ex.header("cookie") is None):
        return _digest_challenge(qop, algorithm, [("stale_after", stale_after), fake])
    if require_cookie and jar.get("fake") != "fake_value":
        return json_response({"errors": ["missing cookie set on challenge"]}, 403, [set_cookie(*fake)])
    nonce = params.get("nonce", "")
    refused = [("stale_after", stale_after), ("last_nonce", nonce), fake]
    if ("last_nonce" in jar and jar["last_nonce"] == nonce) or jar.get("stale_after") == "0":
        return _digest_challenge(qop, algorithm, refused, stale=True)
    uri = ex.request.uri.decode("utf-8", "replace")
    if not auth.digest_ok(params, ex.method, uri, ex.body, user, password, qop, algorithm):
        return _digest_challenge(qop, algorithm, refused)
    cookies = [set_cookie(*fake)]
    if jar.get("stale_after"):
        left = jar["stale_after"]
        cookies.append(set_cookie("stale_after", str(int(left) - 1) if left.lstrip("-").isdigit() else "never"))
    return json_response({"authenticated": True, "user": user}, headers=cookies)


def bearer(ex: Exchange) -> Any:
    token = auth.bearer_token(ex.header("authorization"))
    if token is None:
        return json_response({"authenticated": False}, 401, [("WWW-Authenticate", "Bearer")])
    return {"authenticated": True, "token": token}


# -- redirects ---------------------------------------------------------------------------


def _redirect(location: str, code: int = 302) -> Response:
    return Response(code, b"", None, [("Location", location)])


def redirect(ex: Exchange) -> Any:
    count = ex.int_param("n", 100)
    if (ex.arg("absolute") or "").lower() == "true":
        return absolute_redirect(ex)
    if count < 1:
        raise HttpError(400, "n: expected at least 1")
    return relative_redirect(ex)


def relative_redirect(ex: Exchange) -> Any:
    count = ex.int_param("n", 100)
    if count < 1:
        raise HttpError(400, "n: expected at least 1")
    return _redirect("/get" if count == 1 else f"/relative-redirect/{count - 1}")


def absolute_redirect(ex: Exchange) -> Any:
    count = ex.int_param("n", 100)
    if count < 1:
        raise HttpError(400, "n: expected at least 1")
    return _redirect(ex.base_url + ("/get" if count == 1 else f"/absolute-redirect/{count - 1}"))


def redirect_to(ex: Exchange) -> Any:
    url = ex.arg("url")
    if not url:
        raise HttpError(400, "missing query parameter 'url'")
    code = ex.int_arg("status_code", 302, 300, 399)
    return _redirect(url, code)


# -- cookies -------------------------------------------------------------------------


# Analytics cookies httpbin.org's front end added; httpbin hides them unless ?show_env is given.
ENV_COOKIES = (
    "_gauges_unique", "_gauges_unique_year", "_gauges_unique_month", "_gauges_unique_day",
    "_gauges_unique_hour", "__utmz", "__utma", "__utmb",
)


def cookies(ex: Exchange) -> Any:
    jar = parse_cookie_header(ex.header("cookie"))
    if "show_env" not in ex.query:
        jar = {name: value for name, value in jar.items() if name not in ENV_COOKIES}
    return {"cookies": jar}


def set_cookies(ex: Exchange) -> Any:
    reply = _redirect("/cookies")
    secure = ex.scheme == "https"
    # httpbin takes the first value of a repeated name (dict(request.args.items())).
    reply.header_list.extend([set_cookie(name, values[0], secure) for name, values in ex.query.items()])
    return reply


def set_cookie_from_path(ex: Exchange) -> Any:
    reply = _redirect("/cookies")
    reply.header_list.append(set_cookie(unquote(ex.params["name"]), unquote(ex.params["value"]), ex.scheme == "https"))
    return reply


def delete_cookies(ex: Exchange) -> Any:
    reply = _redirect("/cookies")
    reply.header_list.extend([set_cookie(name, "", delete=True) for name in ex.query])
    return reply


# -- timing and paced bodies -------------------------------------------------------------


def _later(seconds: float, function: Callable[..., Any], *args: Any) -> Any:
    return twisted_reactor().callLater(seconds, function, *args)


def delay(ex: Exchange) -> Any:
    try:
        wanted = float(ex.params["seconds"])
    except ValueError:
        raise HttpError(400, f"delay: expected seconds, got {ex.params['seconds']!r}") from None
    if not wanted >= 0:
        raise HttpError(400, "delay: expected a non-negative number")
    seconds = min(wanted, ex.server.settings.delay_max)
    reply = {**with_body(ex), "method": ex.method}
    done: Deferred[Any] = Deferred()
    call = _later(seconds, done.callback, reply)
    # A client that hangs up must not leave a pending timer behind.
    ex.request.notifyFinish().addErrback(lambda _: call.cancel() if call.active() else None)
    return done


def _pace(ex: Exchange, pieces: Iterator[bytes], interval: float, first_delay: float = 0.0) -> Any:
    """Write ``pieces`` one per ``interval`` seconds on the reactor, then finish."""
    request = ex.request
    if request.method == b"HEAD":
        request.finish()  # headers only: a HEAD reply never has a body to pace
        return STREAMING
    pending: list[Any] = []

    def step() -> None:
        pending.clear()
        if request._disconnected or request.finished:
            return
        piece = next(pieces, None)
        if piece is None:
            request.finish()
            return
        request.write(piece)
        pending.append(_later(interval, step))

    def cancel(_: Any) -> None:
        for call in pending:
            if call.active():
                call.cancel()

    request.notifyFinish().addErrback(cancel)
    pending.append(_later(first_delay, step))
    return STREAMING


def _start_stream(ex: Exchange, code: int, content_type: str, length: int | None = None) -> None:
    ex.request.setResponseCode(code)
    ex.request.setHeader(b"Content-Type", content_type.encode())
    if length is not None:
        ex.request.setHeader(b"Content-Length", str(length).encode())


def drip(ex: Exchange) -> Any:
    cap = ex.server.settings.delay_max
    count = ex.int_arg("numbytes", 10, 1, MAX_BYTES)
    duration = min(ex.float_arg("duration", 2.0), cap)
    first_delay = min(ex.float_arg("delay", 0.0), cap)
    code = ex.int_arg("code", 200, 200, 599)
    _start_stream(ex, code, "application/octet-stream", count)
    return _pace(ex, iter([b"*"] * count), duration / count, first_delay)


def stream(ex: Exchange) -> Any:
    count = min(ex.int_param("n"), MAX_STREAM_LINES)
    basics = ex.basics()
    _start_stream(ex, 200, "application/json")
    lines = (json.dumps({**basics, "id": index}).encode() + b"\n" for index in range(count))
    return _pace(ex, lines, 0.0)


def _random_bytes(ex: Exchange, count: int) -> bytes:
    """``count`` random bytes; with ``?seed=`` exactly httpbin's bytes for that seed.

    httpbin seeds Python's ``random`` and draws ``randint(0, 255)`` per byte, so a seeded
    reply is a function of the seed alone; a private ``random.Random(seed)`` gives the
    same sequence without touching the shared generator. Unseeded replies take the fast path.
    """
    seed = next((values[-1] for name, values in ex.query.items() if name.lower() == "seed"), None)
    if seed is None:
        return random.randbytes(count)
    try:
        generator = random.Random(int(seed))
    except ValueError:
        raise HttpError(400, f"query parameter 'seed': expected an integer, got {seed!r}") from None
    return bytes(generator.randint(0, 255) for _ in range(count))


def stream_bytes(ex: Exchange) -> Any:
    count = min(ex.int_param("n"), MAX_BYTES)
    chunk_size = ex.int_arg("chunk_size", 10 * 1024, 1, MAX_BYTES)
    data = _random_bytes(ex, count)
    _start_stream(ex, 200, "application/octet-stream")
    chunks = (data[i : i + chunk_size] for i in range(0, count, chunk_size))
    return _pace(ex, chunks, 0.0)


def random_bytes(ex: Exchange) -> Any:
    count = min(ex.int_param("n"), MAX_BYTES)
    return Response(200, _random_bytes(ex, count), "application/octet-stream")


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """First range of a ``bytes=`` header as inclusive (start, end); None when unsatisfiable."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*(?:,.*)?", header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    if not match.group(1):
        start, end = max(size - int(match.group(2)), 0), size - 1
    else:
        start = int(match.group(1))
        end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    if start >= size or start > end:
        return None
    return start, end


def range_bytes(ex: Exchange) -> Any:
    """``/range/{n}``: n bytes of ``abc...zabc...``, honouring a single Range (RFC 9110 section 14)."""
    size = ex.int_param("n", MAX_BYTES)
    data = bytes(ord("a") + i % 26 for i in range(size))
    etag = f'"range{size}"'
    common = [("ETag", etag), ("Accept-Ranges", "bytes")]
    header = ex.header("range")
    if header is None:  # httpbin names the whole body's range too
        return Response(200, data, "application/octet-stream", [*common, ("Content-Range", f"bytes 0-{size - 1}/{size}")])
    span = _parse_range(header, size)
    if span is None:
        return Response(416, b"", None, [*common, ("Content-Range", f"bytes */{size}")])
    start, end = span
    return Response(
        206, data[start : end + 1], "application/octet-stream", [*common, ("Content-Range", f"bytes {start}-{end}/{size}")]
    )


# -- compression and caching -------------------------------------------------------------


def _compressed(ex: Exchange, flag: str, encoding: str, compress: Callable[[bytes], bytes]) -> Response:
    body = json_body({flag: True, "headers": ex.headers, "method": ex.method, "origin": ex.origin})
    return Response(200, compress(body), "application/json", [("Content-Encoding", encoding)])


# gzip and brotli are imported by their endpoints: each module was a share of
# `run http`'s start-up that most runs never use (issue 16).
def gzipped(ex: Exchange) -> Any:
    import gzip

    return _compressed(ex, "gzipped", "gzip", gzip.compress)


def deflated(ex: Exchange) -> Any:
    return _compressed(ex, "deflated", "deflate", zlib.compress)


def brotli_compressed(ex: Exchange) -> Any:
    import brotli  # type: ignore[import-untyped]

    return _compressed(ex, "brotli", "br", brotli.compress)


def cache(ex: Exchange) -> Any:
    if ex.header("if-modified-since") or ex.header("if-none-match"):
        return Response(304, b"", None)
    return json_response(
        ex.basics(), headers=[("Last-Modified", formatdate(usegmt=True)), ("ETag", f'"{uuid.uuid4().hex}"')]
    )


def cache_control(ex: Exchange) -> Any:
    seconds = ex.int_param("seconds")
    return json_response(ex.basics(), headers=[("Cache-Control", f"public, max-age={seconds}")])


def entity_tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()]


def etag(ex: Exchange) -> Any:
    """``/etag/{etag}``: If-None-Match (304) and If-Match (412) per RFC 9110 section 13.1."""
    tag = ex.params["etag"]
    headers = [("ETag", f'"{tag}"')]
    if_none_match, if_match = ex.header("if-none-match"), ex.header("if-match")
    if if_none_match is not None and ({tag, "*"} & set(entity_tags(if_none_match))):
        return Response(304, b"", None, headers)
    if if_match is not None and not ({tag, "*"} & set(entity_tags(if_match))):
        return Response(412, b"", None)  # as httpbin: a failed precondition carries no ETag
    return json_response(ex.basics(), headers=headers)


# -- formats -------------------------------------------------------------------------------


def _fixed(body: bytes, content_type: str) -> Handler:
    return lambda ex: Response(200, body, content_type)


def json_sample(ex: Exchange) -> Any:
    return samples.SLIDESHOW_JSON


def image(ex: Exchange) -> Any:
    kind = ex.params.get("kind")
    if kind is None:
        accept = ex.header("accept", "") or ""
        kind = next((name for name, (ctype, _) in samples.IMAGES.items() if ctype in accept), None)
        if kind is None and ("image/*" in accept or "*/*" in accept or not accept):
            kind = "png"
        if kind is None:
            return json_response({"message": "Client did not request a supported media type.", "accept": list(
                ctype for ctype, _ in samples.IMAGES.values())}, 406)
    if kind not in samples.IMAGES:
        raise HttpError(404, f"no image of type {kind!r} (known: {', '.join(samples.IMAGES)})")
    content_type, body = samples.IMAGES[kind]
    return Response(200, body, content_type)


def feed(ex: Exchange) -> Any:
    return Response(200, samples.rss_feed(ex.base_url), "application/rss+xml; charset=utf-8")


# -- uploads (ours, not httpbin's) -----------------------------------------------------------


def upload_form(ex: Exchange) -> Any:
    if "application/json" in (ex.header("accept") or ""):
        return {"files": ex.server.uploads.list()}
    return Response(200, samples.UPLOAD_FORM, "text/html; charset=utf-8")


def upload(ex: Exchange) -> Any:
    content_type = ex.header("content-type", "") or ""
    if not content_type.lower().startswith("multipart/form-data"):
        raise HttpError(415, "expected a multipart/form-data body")
    limit = ex.server.settings.upload_max
    # Twisted has spooled the body to a temp file; measure it before reading it into memory.
    content = ex.request.content
    size = content.seek(0, 2) if content is not None else 0
    if size > limit:
        raise HttpError(413, f"upload larger than {limit} bytes")
    stored = []
    for part in multipart_parts(content_type, ex.body):
        if part.filename is None:
            continue
        saved = ex.server.uploads.save(part.name, part.filename, part.content_type, part.data)
        ex.server.record(
            "file", ex.origin, filename=saved.filename, size=saved.size, sha256=saved.sha256
        )
        stored.append(saved.__dict__)
    if not stored:
        raise HttpError(400, "no file parts in the upload (give each part a filename)")
    return json_response({"files": stored}, 201)


ROUTES: tuple[Route, ...] = (
    Route(("GET",), "/", index, "this page: httpbin's landing page with the endpoint list"),
    Route(("GET",), "/get", get, "the request's args, headers, origin and url"),
    Route(("POST",), "/post", with_body, "also form, files, data and json of the body"),
    Route(("PUT",), "/put", with_body, "like /post"),
    Route(("PATCH",), "/patch", with_body, "like /post"),
    Route(("DELETE",), "/delete", with_body, "like /post"),
    Route(ANY, "/anything", anything, "any method: like /post plus method"),
    Route(ANY, "/anything/{rest*}", anything, "any method and path below"),
    Route(("GET",), "/headers", headers, "the request headers"),
    Route(("GET",), "/ip", ip, "the client address"),
    Route(("GET",), "/user-agent", user_agent, "the User-Agent header"),
    Route(("GET",), "/uuid", new_uuid, "a random UUID4"),
    Route(("GET",), "/base64/{value}", decode_base64, "the URL-safe base64 value, decoded"),
    Route(ANY, "/status/{codes}", status, "that status, or one of a weighted list 200:0.9,500:0.1"),
    Route(("GET", "POST"), "/response-headers", response_headers, "response headers from the query"),
    Route(("GET",), "/basic-auth/{user}/{password}", basic_auth, "Basic auth; 401 otherwise"),
    Route(("GET",), "/hidden-basic-auth/{user}/{password}", hidden_basic_auth, "Basic auth; 404 otherwise"),
    Route(ANY, "/digest-auth/{qop}/{user}/{password}", digest_auth, "Digest auth (MD5)"),
    Route(ANY, "/digest-auth/{qop}/{user}/{password}/{algorithm}", digest_auth, "Digest auth, MD5|SHA-256|SHA-512"),
    Route(
        ANY,
        "/digest-auth/{qop}/{user}/{password}/{algorithm}/{stale_after}",
        digest_auth,
        "Digest auth; the nonce goes stale after stale_after successes",
    ),
    Route(("GET",), "/bearer", bearer, "Bearer token auth; 401 otherwise"),
    Route(("GET",), "/redirect/{n}", redirect, "302 n times, then /get (?absolute=true)"),
    Route(("GET",), "/relative-redirect/{n}", relative_redirect, "302 n times with relative Locations"),
    Route(("GET",), "/absolute-redirect/{n}", absolute_redirect, "302 n times with absolute Locations"),
    Route(ANY, "/redirect-to", redirect_to, "redirect to ?url= with ?status_code="),
    Route(("GET",), "/cookies", cookies, "the cookies sent"),
    Route(("GET",), "/cookies/set", set_cookies, "set cookies from the query, redirect to /cookies"),
    Route(("GET",), "/cookies/set/{name}/{value}", set_cookie_from_path, "set one cookie, redirect to /cookies"),
    Route(("GET",), "/cookies/delete", delete_cookies, "expire the named cookies, redirect to /cookies"),
    Route(ANY, "/delay/{seconds}", delay, "answer after that many seconds (capped by delay_max)"),
    Route(("GET",), "/drip", drip, "numbytes bytes over duration seconds after delay (?code=)"),
    Route(("GET",), "/stream/{n}", stream, "n JSON lines, chunked"),
    Route(("GET",), "/stream-bytes/{n}", stream_bytes, "n random bytes, chunked (?seed=&chunk_size=)"),
    Route(("GET",), "/bytes/{n}", random_bytes, "n random bytes (?seed=)"),
    Route(("GET",), "/range/{n}", range_bytes, "n bytes honouring Range"),
    Route(("GET",), "/gzip", gzipped, "gzip-encoded JSON"),
    Route(("GET",), "/deflate", deflated, "deflate-encoded JSON"),
    Route(("GET",), "/brotli", brotli_compressed, "brotli-encoded JSON"),
    Route(("GET",), "/cache", cache, "304 when If-Modified-Since or If-None-Match is sent"),
    Route(("GET",), "/cache/{seconds}", cache_control, "Cache-Control: public, max-age=seconds"),
    Route(("GET",), "/etag/{etag}", etag, "ETag with If-None-Match / If-Match"),
    Route(("GET",), "/html", _fixed(samples.HTML, "text/html; charset=utf-8"), "an HTML page"),
    Route(("GET",), "/json", json_sample, "a JSON document"),
    Route(("GET",), "/xml", _fixed(samples.XML, "application/xml"), "an XML document"),
    Route(("GET",), "/robots.txt", _fixed(samples.ROBOTS_TXT, "text/plain"), "robots.txt"),
    Route(("GET",), "/deny", _fixed(samples.DENY, "text/plain"), "what robots.txt denies"),
    Route(("GET",), "/encoding/utf8", _fixed(samples.UTF8_HTML, "text/html; charset=utf-8"), "UTF-8 HTML"),
    Route(("GET",), "/image", image, "an image chosen by Accept"),
    Route(("GET",), "/image/{kind}", image, "png, jpeg, svg or webp"),
    Route(("GET",), "/forms/post", _fixed(samples.FORMS_POST, "text/html; charset=utf-8"), "an HTML form posting to /post"),
    Route(("GET",), "/feed.rss", feed, "an RSS 2.0 feed"),
    Route(("GET",), "/upload", upload_form, "an upload form (JSON list of uploads with Accept: application/json)"),
    Route(("POST", "PUT"), "/upload", upload, "store multipart file parts under the data dir"),
)
