"""WireMock-compatible stubs on the HTTP server: mappings, ``/__admin``, journal, recording.

Modules, each owning one part of WireMock 3's behaviour:

- matching.py: request patterns and string value patterns (request matching);
- mappings.py: the mapping JSON and the response definition (stubbing);
- templating.py: Handlebars response templates with WireMock's helpers;
- engine.py: the stubs, scenarios and request journal of one server (no I/O but files);
- store.py: mapping files in WireMock's layout (persistence, read-only stub packs);
- journal.py: serve events in WireMock's JSON (verifying);
- serving.py: the Twisted side: delays, dribbling, faults, proxying;
- recording.py: record and playback;
- admin.py: the ``/__admin`` routes;
- client.py: the same Python face over HTTP, for servers running elsewhere.

:class:`HttpStubs` puts them together for one :class:`~servers.http.server.HttpServer`;
its ``stub()``/``requests()``/``verify()`` are what the pytest fixture exposes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.guard import AdminGuard
from .admin import StubAdmin
from .client import StubClient, VerificationError, verification_message, verified
from .engine import StubEngine
from .mappings import StubMapping
from .matching import StubFormatError, parse_request_pattern
from .recording import Recorder
from .serving import StubResponder
from .store import StubDirectory, StubFileError, find_packs

if TYPE_CHECKING:
    from ..server import HttpServer

__all__ = ["HttpStubs", "StubClient", "StubEngine", "StubFileError", "StubFormatError", "StubMapping", "VerificationError"]


class HttpStubs:
    """The stub engine, recorder, admin API and responder of one HTTP server."""

    def __init__(self, http: HttpServer, stubs_dir: Path, pack_dirs: list[Path], unmatched_404: bool, admin_hosts: tuple[str, ...] = (), upstream_proxy: tuple[str, int] | None = None):
        packs = [pack for base in pack_dirs for pack in find_packs(base)]
        self.engine = StubEngine(StubDirectory(stubs_dir, read_only=False), packs, http.core.config.core.journal_size)
        self.recorder = Recorder(self.engine)
        self.admin = StubAdmin(self.engine, self.recorder)
        # WireMock's admin API has no guard; here a web page in the developer's browser must
        # not be able to rewrite stubs (or write mapping files): the admin API's Host
        # allowlist and cross-site Origin check, without its Content-Type rule, which would
        # refuse `curl -d` scripts written for WireMock.
        guard = AdminGuard.build(http.host, admin_hosts, auth="", max_body=0)
        self.responder = StubResponder(http, self.engine, self.admin.table(), unmatched_404, guard, upstream_proxy)

    def load(self) -> None:
        """Load the mapping files; raises StubFileError naming the file and field."""
        self.engine.load()

    # -- the Python face (pytest fixture) ----------------------------------------------------------
    def stub(self, mapping: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Add a stub from WireMock JSON: ``stub({"request": ..., "response": ...})`` or keywords.

        Returns the mapping as stored (with its ``id``), as ``POST /__admin/mappings`` does.
        """
        return self.engine.add({**(mapping or {}), **fields}).as_json()

    def requests(self, pattern: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Journalled requests (WireMock's logged-request JSON) matching a request pattern."""
        return [event.logged_request() for event in self.engine.find(pattern or {})]

    def verify(self, pattern: dict[str, Any], count: int | None = None) -> list[dict[str, Any]]:
        """Assert ``count`` requests (at least one when None) matched; returns them.

        Raises :class:`VerificationError` listing the closest journalled requests.
        """
        found = self.requests(pattern)
        if verified(pattern, count, found):
            return found
        misses = self.engine.near_misses_for_pattern(parse_request_pattern("pattern", pattern))
        closest = [(event.request.method, event.request.url, distance) for event, distance in misses]
        raise VerificationError(verification_message(pattern, count, len(found), closest))

    def reset(self) -> None:
        self.engine.reset()
