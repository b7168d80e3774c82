"""The web console: static pages served by the admin API at ``/``, from the installed package.

This module owns only the serving of the console's files (``static/``: one HTML page,
ES modules, a style sheet, a favicon); everything the console shows comes from the
documented admin API endpoints, the same ones tests and scripts use (Mailpit's
messages API and ``/api/events`` WebSocket, ``/api/v1/events``, ``/api/v1/files``,
``/api/v1/faults``, ``/health``). There is no build step and nothing is fetched from
outside: the package data is the whole console.

Every console response carries :data:`CONTENT_SECURITY_POLICY`. Scripts come only from
this origin (no inline script, no eval), so text from mail can never become code even
if it reached the DOM as markup, which the console also never does (``textContent``
only). Two allowances exist for the message frame, a ``srcdoc`` iframe that inherits
this policy: inline styles (mail HTML is styled inline) and remote images (the frame's
own, stricter policy blocks them until the user clicks "Load remote images").
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from ..core.web import ApiError, ApiRequest, Reply, Route

# name suffix -> Content-Type of the files under static/
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: http: https:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The files change only with the package; revalidate so an upgrade shows at once.
    "Cache-Control": "no-cache",
}


def console_routes() -> list[Route]:
    text = {"type": "string"}
    return [
        Route("GET", "/", _index, "the web console (HTML)", media_type="text/html", reply=text),
        Route("GET", "/favicon.ico", _favicon, "the console's icon", media_type="image/svg+xml", reply=text),
        Route(
            "GET",
            "/console/{asset*}",
            _asset,
            "the console's scripts, styles and images",
            media_type="application/octet-stream",
            reply=text,
        ),
    ]


@cache
def _assets() -> dict[str, bytes]:
    """Every file of static/, read once; only these names can be served."""
    folder = resources.files(__package__) / "static"
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(suffix) for suffix in CONTENT_TYPES)
    }


def _serve(name: str) -> Reply:
    assets = _assets()
    if name not in assets:
        raise ApiError(404, f"no console file {name!r}")
    content_type = next(kind for suffix, kind in CONTENT_TYPES.items() if name.endswith(suffix))
    return Reply(200, assets[name], content_type, dict(SECURITY_HEADERS))


def _index(request: ApiRequest) -> Reply:
    return _serve("index.html")


def _favicon(request: ApiRequest) -> Reply:
    return _serve("favicon.svg")


def _asset(request: ApiRequest) -> Any:
    return _serve(request.params["asset"])
