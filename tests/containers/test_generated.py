"""docker/generate.py's output for the registry as it is now (no Docker needed: this
module runs in `make test` too): every server gets a non-root, health-checked image
on its ports, and the compose stack can bind all of them at once on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from servers import registry
from servers.core.config import PORT

GENERATOR = Path(__file__).resolve().parents[2] / "docker" / "generate.py"


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refservers_docker_generate", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def outputs(generate: ModuleType) -> dict[str, str]:
    return {path.name: text for path, text in generate.outputs().items()}


@pytest.mark.parametrize("name", list(registry.SERVERS))
def test_each_server_image_runs_its_server_as_non_root_with_a_health_check(name: str, outputs: dict[str, str]) -> None:
    dockerfile = outputs[f"{name}.Dockerfile"]
    main_port = next(int(o.default) for o in registry.server_class(name).options if o.kind is PORT)
    expose = re.search(r"^EXPOSE (.+)$", dockerfile, re.M)
    assert expose and f"{main_port}/tcp" in expose.group(1).split() and "8025/tcp" in expose.group(1).split()
    assert re.search(rf'^HEALTHCHECK .* CMD \["refservers", "check", "{name}"', dockerfile, re.M)
    assert "\nUSER 10001:10001\n" in dockerfile
    assert dockerfile.rstrip().endswith(f'CMD ["refservers", "run", "{name}"]')  # exec form: PID 1 gets SIGTERM
    assert "REFSERVERS_HOST=0.0.0.0" in dockerfile and "REFSERVERS_ADMIN_ENABLED=true" in dockerfile


def test_compose_publishes_every_port_on_loopback_once(outputs: dict[str, str]) -> None:
    compose = outputs["compose.yaml"]
    published = re.findall(r'^\s+- "([^"]+)"$', compose, re.M)
    assert published and all(item.startswith("127.0.0.1:") for item in published)
    host_ports: Counter[tuple[int, str]] = Counter()
    for item in published:
        _, host, rest = item.split(":", 2)
        proto = "udp" if rest.endswith("/udp") else "tcp"
        low, _, high = host.partition("-")
        for port in range(int(low), int(high or low) + 1):
            host_ports[(port, proto)] += 1
    clashes = [port for port, count in host_ports.items() if count > 1]
    assert not clashes, f"two containers publish the same host port: {clashes}"
    for name in registry.SERVERS:
        assert f"\n  {name}:\n    image: refservers/{name}:latest\n" in compose


def test_mail_and_file_servers_share_their_stores_through_named_volumes(outputs: dict[str, str]) -> None:
    compose = outputs["compose.yaml"]
    services = dict(re.findall(r"^  (\w+):\n((?:    .*\n|      .*\n)+)", compose, re.M))
    for name in ("smtp", "pop3", "imap"):
        if name in services:
            assert "- mail:/data/mail" in services[name]
    for name in ("ftp", "sftp"):
        if name in services:
            assert "- files:/data/files" in services[name]
    if "ftp" in services:
        assert 'REFSERVERS_FTP_MASQUERADE_ADDRESS: "127.0.0.1"' in services["ftp"]


def test_targets_env_names_an_admin_api_for_every_server(outputs: dict[str, str]) -> None:
    lines = outputs["targets.env"].splitlines()
    assert "REFSERVERS_TARGET=container" in lines
    for name in registry.SERVERS:
        assert any(line.startswith(f"REFSERVERS_TARGET_{name.upper()}_ADMIN=127.0.0.1:") for line in lines)
