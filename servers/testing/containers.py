"""RefServersContainer: the all-in-one image as a testcontainers-python module.

testcontainers-python has no FTP or IMAP-capable mail module; this one brings every
refservers server in one container::

    from servers.testing.containers import RefServersContainer

    with RefServersContainer() as refservers:          # waits until /health is 200
        host, port = refservers.address("smtp")        # the mapped SMTP port
        refservers.url("http")                         # "http://localhost:49153"
        refservers.admin.get("/api/v1/messages")       # the admin API, as JSON

Every TCP port of every server is exposed on a free host port. FTP's passive data ports
are not (Docker maps them to other numbers than the PASV reply names): use
``with_bind_ports`` for 30000-30009 and ``REFSERVERS_FTP_MASQUERADE_ADDRESS`` if a test
needs FTP data transfers. Build the image with ``make images``. Without a registry,
set ``TESTCONTAINERS_RYUK_DISABLED=true`` (testcontainers' reaper is an image to pull).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

from .. import registry
from ..core.config import PORT

DEFAULT_IMAGE = "refservers/all-in-one:latest"
ADMIN_PORT = 8025


def default_ports() -> dict[str, dict[str, int]]:
    """server -> {option: default port}, as the image listens (e.g. smtp: port, tls_port)."""
    table = {}
    for name in [*registry.SERVERS, "admin"]:
        ports = {o.key: int(o.default) for o in registry.server_class(name).options if o.kind is PORT and o.default}
        if ports:
            table[name] = ports
    return table


class AdminClient:
    """The container's admin API: JSON in, JSON out.

    :raises urllib.error.HTTPError: on a 4xx or 5xx answer (its body names the problem).
    """

    def __init__(self, base_url: str):
        self.base_url = base_url

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        with urllib.request.urlopen(urllib.request.Request(self.base_url + path, data, headers, method=method), timeout=30) as reply:
            raw = reply.read()
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body if body is not None else {})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


class RefServersContainer(DockerContainer):  # type: ignore[misc]
    def __init__(self, image: str = DEFAULT_IMAGE, startup_timeout: float = 120, **kwargs: Any):
        super().__init__(image, **kwargs)
        self.server_ports = default_ports()
        self.with_exposed_ports(*sorted({port for listeners in self.server_ports.values() for port in listeners.values()}))
        # /health answers 200 once every server passed its own probe.
        self.waiting_for(HttpWaitStrategy(ADMIN_PORT, "/health").for_status_code(200).with_startup_timeout(int(startup_timeout)))

    def port(self, server: str, listener: str | None = None) -> int:
        """The host port mapped to ``server``'s ``listener`` (``port``, ``tls_port``...;
        default: its main one, the first port option)."""
        try:
            listeners = self.server_ports[server]
            inside = listeners[listener or next(iter(listeners))]
        except KeyError:
            raise KeyError(f"no {server} {listener} (known: {self.server_ports.get(server) or sorted(self.server_ports)})") from None
        return int(self.get_exposed_port(inside))

    def address(self, server: str, listener: str | None = None) -> tuple[str, int]:
        return self.get_container_host_ip(), self.port(server, listener)

    def url(self, server: str, listener: str | None = None) -> str:
        host, port = self.address(server, listener)
        scheme = registry.server_class(server).scheme
        return f"{scheme}://{host}:{port}"

    @property
    def admin(self) -> AdminClient:
        host, port = self.address("admin")
        return AdminClient(f"http://{host}:{port}")

    def urls(self) -> dict[str, str]:
        """Every server's main URL (what `refservers up` prints), with the mapped ports."""
        return {name: self.url(name) for name in self.server_ports}

