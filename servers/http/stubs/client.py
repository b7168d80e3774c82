"""StubClient: ``stub()``/``requests()``/``verify()`` over a server's ``/__admin`` API.

The pytest fixture's helpers for an HTTP server that runs elsewhere (a container, a
remote target): the same three calls as :class:`~servers.http.stubs.HttpStubs` has in
process, spoken in WireMock's JSON over HTTP with the standard library, so they work
against refservers and WireMock alike.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .matching import StubFormatError


class VerificationError(AssertionError):
    """``verify()`` found a different number of requests than expected (near misses in the text)."""


def verification_message(pattern: dict[str, Any], count: int | None, found: int, closest: list[tuple[str, str, float]]) -> str:
    """One message for a failed verify(); ``closest`` is (method, url, distance) triples."""
    near = "; ".join(f"{method} {url} (distance {distance:.2f})" for method, url, distance in closest) or "no requests"
    wanted = "at least one request" if count is None else f"{count} request(s)"
    return f"expected {wanted} matching {json.dumps(pattern)}, found {found}; closest: {near}"


def verified(pattern: dict[str, Any], count: int | None, found: list[dict[str, Any]]) -> bool:
    return (count is None and bool(found)) or (count is not None and len(found) == count)


class StubClient:
    def __init__(self, base_url: str, timeout: float = 10.0):
        self.admin_url = base_url.rstrip("/") + "/__admin"
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.admin_url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                text = reply.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")
            error.close()
            if error.code == 422:  # WireMock's invalid-mapping reply: {"errors": [{"source": {"pointer"}, "title"}]}
                first = (json.loads(detail).get("errors") or [{}])[0]
                pointer = first.get("source", {}).get("pointer", "/").strip("/").replace("/", ".")
                raise StubFormatError(pointer or "mapping", first.get("title", detail)) from None
            raise AssertionError(f"{method} {self.admin_url}{path}: {error.code} {detail.strip()}") from None
        return json.loads(text) if text.strip() else None

    def stub(self, mapping: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Add a stub (``POST /__admin/mappings``); returns the mapping as the server stored it."""
        result: dict[str, Any] = self._call("POST", "/mappings", {**(mapping or {}), **fields})
        return result

    def requests(self, pattern: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Journalled requests matching a request pattern (``POST /__admin/requests/find``)."""
        found: list[dict[str, Any]] = self._call("POST", "/requests/find", pattern or {})["requests"]
        return found

    def verify(self, pattern: dict[str, Any], count: int | None = None) -> list[dict[str, Any]]:
        """Assert ``count`` (default: at least one) requests matched; raises VerificationError."""
        found = self.requests(pattern)
        if verified(pattern, count, found):
            return found
        misses = self._call("POST", "/near-misses/request-pattern", pattern)["nearMisses"]
        closest = [(m["request"]["method"], m["request"]["url"], m["matchResult"]["distance"]) for m in misses]
        raise VerificationError(verification_message(pattern, count, len(found), closest))
