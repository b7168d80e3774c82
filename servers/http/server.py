"""HttpServer: httpbin-compatible endpoints over Twisted web (HTTP and HTTPS)."""

from __future__ import annotations

from typing import Any

from twisted.web import resource
from twisted.web import server as web_server

from ..core.config import FLOAT, PORT, Option
from ..core.lifecycle import probe_http
from ..core.twisted_listen import TwistedServer


class _Placeholder(resource.Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")
        return b"{}\n"


class HttpServer(TwistedServer):
    name = "http"
    description = "httpbin-compatible HTTP/HTTPS server with static files, uploads and CGI"
    scheme = "http"
    options = (
        Option("port", PORT, 8080, "plain HTTP port"),
        Option("tls_port", PORT, 8443, "HTTPS port"),
        Option("delay_max", FLOAT, 10.0, "cap in seconds for /delay and /drip"),
    )

    def _bind(self) -> None:
        site = web_server.Site(_Placeholder())
        site.noisy = False
        self.listen("main", site, self.settings.port)
        self.listen("tls", site, self.settings.tls_port, tls=True)

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        return probe_http(host, port, timeout, "/get")
