"""HttpServer: the httpbin-compatible HTTP/HTTPS server (Twisted web).

Owns the listeners (plain and TLS, one Site), the directories it serves and stores
into, and the options. Endpoints live in routes.py, request handling in site.py,
WireMock-compatible stubs (which answer before the endpoints) in stubs/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import process

from ..core.config import BOOL, FLOAT, INT, PATH, PORT, STR, STR_LIST, ConfigError, Option, choice
from ..core.faults import DELAY, DISCONNECT, INTEGER, STRING, FaultAction, Param
from ..core.lifecycle import probe_http
from ..core.twisted_listen import TwistedServer
from .site import HttpSite
from .stubs import HttpStubs, StubFileError, StubFormatError
from .uploads import UploadStore


class HttpServer(TwistedServer):
    name = "http"
    description = "httpbin-compatible HTTP/HTTPS server with static files, uploads and CGI"
    scheme = "http"
    options = (
        Option("port", PORT, 8080, "plain HTTP port"),
        Option("tls_port", PORT, 8443, "HTTPS port (certificate from the core's local CA)"),
        Option("delay_max", FLOAT, 10.0, "cap in seconds for /delay and /drip"),
        Option("static_dir", PATH, None, "directory served at /static/ (default <data_dir>/http/static)"),
        Option("cgi_dir", PATH, None, "CGI scripts served at /cgi-bin/ (default <data_dir>/http/cgi-bin)"),
        Option("idle_timeout", FLOAT, 60.0, "seconds a connection may stay idle between requests before it is closed (0: never)"),
        Option("upload_max", INT, 64 * 1024 * 1024, "largest /upload body in bytes"),
        Option("stubs_dir", PATH, None, "WireMock-layout stubs (mappings/, __files/), read and written (default <data_dir>/stubs)"),
        Option("stub_packs", STR_LIST, ("configs/stubs",), "directories searched for read-only stub packs (any folder with mappings/)"),
        Option("unmatched", choice("httpbin", "404"), "httpbin", "a request no stub matches: the httpbin endpoints, or WireMock's 404"),
        Option("stub_cors", BOOL, True, "stub answers to a browser (Origin sent) get CORS headers unless the stub sets its own (WireMock's --enable-stub-cors)"),
        Option("upstream_proxy", STR, "", "HTTP forward proxy for proxyBaseUrl stubs and recordings, e.g. http://127.0.0.1:3128 so the proxy's toxics apply (http:// targets)"),
        Option("admin_hosts", STR_LIST, (), "Host names /__admin answers besides localhost, IP literals and the bind address; [\"*\"]: any"),
    )
    fault_subject = 'the request path ("/get")'
    fault_actions = {
        "status": FaultAction(
            "answer with HTTP status params.code instead of serving the request",
            (
                Param("code", INTEGER, 100, 599, default=500, help="the HTTP status"),
                Param("body", STRING, help="a text/plain body (default: a JSON error naming the rule)"),
            ),
        ),
        "delay": DELAY,
        "disconnect": DISCONNECT,
    }
    # Fixtures: no test should wait long on /delay or /drip, and no stub pack from the
    # checkout's configs/ should answer a test's requests unless it loads one itself.
    test_settings = {"delay_max": "0.5", "stub_packs": ""}

    @property
    def static_dir(self) -> Path:
        return Path(self.settings.static_dir or self.data_dir / "static").absolute()

    @property
    def cgi_dir(self) -> Path:
        return Path(self.settings.cgi_dir or self.data_dir / "cgi-bin").absolute()

    @property
    def stubs_dir(self) -> Path:
        return Path(self.settings.stubs_dir or self.core.data_dir / "stubs").absolute()

    @property
    def uploads(self) -> UploadStore:
        return UploadStore(self.data_dir / "uploads")

    def _bind(self) -> None:
        # The defaults are created; configured directories must exist (a typo should fail loudly).
        for option, path in (("static_dir", self.static_dir), ("cgi_dir", self.cgi_dir)):
            if getattr(self.settings, option) is None:
                path.mkdir(parents=True, exist_ok=True)
            elif not path.is_dir():
                raise ConfigError(f"[http] {option}: {path} is not a directory")
        upstream_proxy = _proxy_address(self.settings.upstream_proxy)
        self.stubs = HttpStubs(self, self.stubs_dir, [Path(p) for p in self.settings.stub_packs], self.settings.unmatched == "404", self.settings.admin_hosts, upstream_proxy)
        try:
            self.stubs.load()
        except (StubFileError, StubFormatError) as error:
            raise ConfigError(f"[http] stubs: {error}") from None
        site = HttpSite(self, self.settings.idle_timeout)
        self.listen("main", site, self.settings.port)
        self.listen("tls", site, self.settings.tls_port, tls=True)
        # CGI children are reaped by Twisted on SIGCHLD, but our reactor runs in a thread
        # without signal handlers: a child that closes its pipes before it exits would
        # never be reaped and its request never finished. Poll for exited children instead.
        self.every(0.05, process.reapAllProcesses)
        site.sweep_idle_channels(self.every)

    # -- stubs from Python (the refservers_http fixture) ------------------------------------
    def stub(self, mapping: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Add a WireMock stub mapping (same engine as POST /__admin/mappings); returns it with its id."""
        return self.stubs.stub(mapping, **fields)

    def requests(self, pattern: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Journalled requests matching a WireMock request pattern."""
        return self.stubs.requests(pattern)

    def verify(self, pattern: dict[str, Any], count: int | None = None) -> list[dict[str, Any]]:
        """Assert that ``count`` (default: at least one) requests matched ``pattern``."""
        return self.stubs.verify(pattern, count)

    def _unbind(self) -> None:
        stubs: Any = getattr(self, "stubs", None)
        if stubs is not None:
            self.core.loop.call(stubs.responder.close)
        super()._unbind()

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        return probe_http(host, port, timeout, "/get")


def _proxy_address(url: str) -> tuple[str, int] | None:
    """``http://host:port`` -> (host, port); "" -> None; anything else is a ConfigError."""
    if not url:
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"[http] upstream_proxy: expected http://host:port, got {url!r}")
    return parts.hostname, port
