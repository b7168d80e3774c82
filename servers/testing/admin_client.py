"""AdminClient: a test's client of the admin API (servers/admin.py) over plain HTTP.

JSON in, JSON out (a body that is not JSON comes back as text: some Mailpit-shaped
routes answer ``ok``). Used by the testcontainers module (containers.py) and by the
pytest plugin's tenants (tenant.py); stdlib only, so neither needs a web client.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

# A bound for one admin call on a loaded machine; long polls add their own timeout.
REQUEST_TIMEOUT = 30.0


class AdminApiError(Exception):
    """A 4xx or 5xx answer: ``status`` and the API's own message (its ``error`` field)."""

    def __init__(self, method: str, url: str, status: int, message: str):
        super().__init__(f"{method} {url}: {status} {message}")
        self.status = status
        self.message = message


class AdminClient:
    """The admin API at ``base_url`` (``http://host:port``).

    :raises AdminApiError: on a 4xx or 5xx answer (its message names the problem).
    :raises OSError: when the API cannot be reached.
    """

    def __init__(self, base_url: str, timeout: float = REQUEST_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        outgoing = urllib.request.Request(url, data, headers, method=method)
        try:
            with urllib.request.urlopen(outgoing, timeout=timeout or self.timeout) as reply:
                return _decoded(reply.read())
        except urllib.error.HTTPError as error:
            with error:  # an HTTPError holds the socket until closed
                answer = _decoded(error.read())
            message = answer.get("error", answer) if isinstance(answer, dict) else answer
            raise AdminApiError(method, url, error.code, str(message)) from None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def delete(self, path: str, **query: Any) -> Any:
        return self.request("DELETE", path, query=query)

    def __repr__(self) -> str:
        return f"<AdminClient {self.base_url}>"


def _decoded(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
