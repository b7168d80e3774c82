"""RemoteServer: a test's handle on a server that is already running elsewhere.

The pytest fixtures normally start servers in-process. With ``REFSERVERS_TARGET=container``
(every server at 127.0.0.1 on its default ports, as ``docker/compose.yaml`` publishes
them) or ``REFSERVERS_TARGET_<NAME>=host:port`` (one server anywhere), the fixture
yields a :class:`RemoteServer` instead: the same ``host``, ``port``, ``url`` and
``listeners`` a client needs, and a ``journal`` read through that server's admin API
when ``REFSERVERS_TARGET_<NAME>_ADMIN=host:port`` names it (each container serves its
own admin API; ``docker/targets.env`` lists the compose stack's).

Anything only an in-process server has (``core``, ``data_dir``, ``settings``,
restarting with other settings) skips the test that asks for it, with the reason, so
one suite runs in both modes and says plainly what it could not check remotely.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from .. import registry
from ..core.config import PORT
from ..core.journal import Event

TARGET = "REFSERVERS_TARGET"
CONTAINER_MODE = "container"
# How often a remote journal is polled while a test waits for an event (the admin
# API has no push channel); the caller's timeout bounds the wait.
JOURNAL_POLL_SECONDS = 0.05


def target_mode(env: Mapping[str, str]) -> bool:
    """True when any fixture should use a remote server instead of starting one."""
    return env.get(TARGET, "") == CONTAINER_MODE or any(name.startswith(TARGET + "_") for name in env)


def remote_address(name: str, env: Mapping[str, str]) -> tuple[str, int] | None:
    """Where server ``name`` runs according to ``env``, or None to start it in-process."""
    explicit = env.get(f"{TARGET}_{name.upper()}")
    if explicit:
        return _host_port(explicit, f"{TARGET}_{name.upper()}")
    if env.get(TARGET, "") == CONTAINER_MODE:
        cls = registry.server_class(name)
        return "127.0.0.1", next(int(o.default) for o in cls.options if o.kind is PORT)
    return None


def _host_port(text: str, source: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise pytest.UsageError(f"{source}: expected host:port, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class RemoteJournal:
    """The journal of a server in another process, read through its admin API.

    Like a fresh in-process journal, it shows only events recorded after the handle
    was made (``baseline``): the remote server has been serving other tests before.
    """

    def __init__(self, admin_url: str, server: str):
        self.admin_url = admin_url
        self.server = server
        self.baseline = self._get(limit=1)["last_id"]

    def _get(self, **query: Any) -> dict[str, Any]:
        params = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        with urllib.request.urlopen(f"{self.admin_url}/api/v1/events?{params}", timeout=10) as reply:
            body: dict[str, Any] = json.load(reply)
        return body

    def events(
        self, server: str | None = None, kind: str | None = None, since: int = 0, limit: int | None = None
    ) -> list[Event]:
        body = self._get(server=server, kind=kind, since=max(since, self.baseline), limit=limit)
        return [Event(**item) for item in body["events"]]

    @property
    def last_id(self) -> int:
        return int(self._get(limit=1)["last_id"])

    def wait_for(
        self,
        predicate: Callable[[Event], bool] = lambda event: True,
        timeout: float = 10.0,
        since: int = 0,
        server: str | None = None,
        kind: str | None = None,
    ) -> Event:
        deadline = time.monotonic() + timeout
        seen = max(since, self.baseline)
        while True:
            for event in self.events(server=server, kind=kind, since=seen):
                if predicate(event):
                    return event
                seen = max(seen, event.id)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no matching event from {self.admin_url} within {timeout}s")
            time.sleep(JOURNAL_POLL_SECONDS)

    def clear(self) -> None:
        # Clearing a shared remote journal would race with other tests: move the baseline.
        self.baseline = self.last_id


class RemoteServer:
    """Duck-types the parts of :class:`~servers.core.Server` a client-side test uses."""

    def __init__(self, name: str, host: str, port: int, env: Mapping[str, str]):
        self.name = name
        self.host = host
        self.probe_host = host
        self.cls = registry.server_class(name)
        self.scheme = self.cls.scheme
        self.description = self.cls.description
        self.state = "ready"
        admin = env.get(f"{TARGET}_{name.upper()}_ADMIN")
        self.admin_url = "http://{}:{}".format(*_host_port(admin, f"{TARGET}_{name.upper()}_ADMIN")) if admin else None
        self.listeners = self._listeners(port)
        # Made now, so the journal shows what happens from the fixture on, like a fresh
        # in-process journal (not from the first time a test reads it).
        self._journal = RemoteJournal(self.admin_url, name) if self.admin_url else None

    def _listeners(self, port: int) -> dict[str, int]:
        """Listener names and ports as the server reports them (admin API), main port first.

        Other listeners are taken to be published at the port the server bound (as
        docker/compose.yaml does); without an admin API they are derived from the
        option names: ``port`` -> main, ``tls_port`` -> tls, ``<x>_port`` -> x.
        """
        reported: dict[str, int] = {}
        if self.admin_url:
            with urllib.request.urlopen(f"{self.admin_url}/api/v1/servers", timeout=10) as reply:
                for entry in json.load(reply)["servers"]:
                    if entry["name"] == self.name:
                        reported = {str(k): int(v) for k, v in entry["listeners"].items()}
        if not reported:
            for option in self.cls.options:
                if option.kind is PORT:
                    label = "main" if option.key == "port" else option.key.removesuffix("_port")
                    reported[label] = int(option.default)
        main = next(iter(reported), "main")
        return {main: port} | {label: value for label, value in reported.items() if label != main}

    @property
    def port(self) -> int:
        return next(iter(self.listeners.values()))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def journal(self) -> RemoteJournal:
        if self._journal is None:
            pytest.skip(f"{self.name} runs remotely without {TARGET}_{self.name.upper()}_ADMIN: no journal to read")
        return self._journal

    # -- WireMock-compatible stubs (http only), over the server's /__admin API -----------------
    def _stub_client(self) -> Any:
        if self.name != "http":
            raise AttributeError(f"{self.name} has no stubs")
        from ..http.stubs.client import StubClient

        return StubClient(self.url)

    def stub(self, mapping: dict[str, Any] | None = None, **fields: Any) -> Any:
        """As HttpServer.stub(): add a WireMock stub mapping."""
        return self._stub_client().stub(mapping, **fields)

    def requests(self, pattern: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """As HttpServer.requests(): journalled requests matching a request pattern."""
        found: list[dict[str, Any]] = self._stub_client().requests(pattern)
        return found

    def verify(self, pattern: dict[str, Any], count: int | None = None) -> list[dict[str, Any]]:
        """As HttpServer.verify(): assert on journalled requests (VerificationError)."""
        found: list[dict[str, Any]] = self._stub_client().verify(pattern, count)
        return found

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "host": self.host, "listeners": dict(self.listeners), "url": self.url}

    def __getattr__(self, attribute: str) -> Any:
        # Only reached for attributes not set above: the in-process internals.
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        pytest.skip(
            f"needs the in-process {self.name} server ({attribute!r}); "
            f"{self.name} is a remote target here ({TARGET}): {self.url}"
        )

    def __repr__(self) -> str:
        return f"<RemoteServer {self.name} {self.url}>"
