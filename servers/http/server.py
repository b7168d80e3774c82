"""HttpServer: the httpbin-compatible HTTP/HTTPS server (Twisted web).

Owns the listeners (plain and TLS, one Site), the directories it serves and stores
into, and the options. Endpoints live in routes.py, request handling in site.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import process
from twisted.internet.task import LoopingCall

from ..core.config import FLOAT, INT, PATH, PORT, Option
from ..core.faults import DELAY, DISCONNECT, INTEGER, STRING, FaultAction, Param
from ..core.lifecycle import probe_http
from ..core.loop import twisted_reactor
from ..core.twisted_listen import TwistedServer
from .site import HttpSite
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
        Option("upload_max", INT, 64 * 1024 * 1024, "largest /upload body in bytes"),
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
    # Fixtures: no test should wait long on /delay or /drip.
    test_settings = {"delay_max": "0.5"}

    @property
    def static_dir(self) -> Path:
        return Path(self.settings.static_dir or self.data_dir / "static").absolute()

    @property
    def cgi_dir(self) -> Path:
        return Path(self.settings.cgi_dir or self.data_dir / "cgi-bin").absolute()

    @property
    def uploads(self) -> UploadStore:
        return UploadStore(self.data_dir / "uploads")

    def _bind(self) -> None:
        # The defaults are created; configured directories must exist (a typo should fail loudly).
        for option, path in (("static_dir", self.static_dir), ("cgi_dir", self.cgi_dir)):
            if getattr(self.settings, option) is None:
                path.mkdir(parents=True, exist_ok=True)
            elif not path.is_dir():
                from ..core.config import ConfigError

                raise ConfigError(f"[http] {option}: {path} is not a directory")
        site = HttpSite(self)
        self.listen("main", site, self.settings.port)
        self.listen("tls", site, self.settings.tls_port, tls=True)
        self._start_cgi_reaper()

    def _start_cgi_reaper(self) -> None:
        # CGI children are reaped by Twisted on SIGCHLD, but our reactor runs in a thread
        # without signal handlers: a child that closes its pipes before it exits would
        # never be reaped and its request never finished. Poll for exited children instead.
        self._reaper = LoopingCall(process.reapAllProcesses)
        self._reaper.clock = twisted_reactor()

        def start() -> None:
            self._reaper.start(0.05, now=False)

        self.core.loop.call(start)

    def _unbind(self) -> None:
        reaper: Any = getattr(self, "_reaper", None)
        if reaper is not None and reaper.running:
            self.core.loop.call(reaper.stop)
        super()._unbind()

    @classmethod
    def probe(cls, host: str, port: int, timeout: float = 5.0) -> str:
        return probe_http(host, port, timeout, "/get")
