"""The layout rule of CONTRIBUTING.md ("Rooms"), checked against the registry: every
server row is a package ``servers/<name>/`` whose ``server.py`` defines the Server class
and whose ``__init__.py`` re-exports it, and its tests are in ``tests/<name>/``.

The rows that do not follow it yet are listed here by name, so a new room cannot add a
module or an odd name unnoticed, and a room that gets moved fails the test until it is
taken off the list."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from servers import registry

ROOT = Path(__file__).resolve().parents[2]
# Rooms that do not follow the rule yet (none since smtp, pop3 and imap left servers/mail/
# and their tests, with ftp's and sftp's, left tests/mail/ and tests/files/).
ROOMS_NOT_YET_PACKAGES: set[str] = set()
TESTS_NOT_YET_BY_ROOM: set[str] = set()


@pytest.mark.parametrize("name", sorted(set(registry.SERVERS) - ROOMS_NOT_YET_PACKAGES))
def test_each_room_is_a_package_whose_server_module_holds_the_class(name: str) -> None:
    module_name, _, class_name = registry.SERVERS[name].partition(":")
    assert module_name == f"servers.{name}", "the registry target is servers.<name>:<Class>"
    assert (ROOT / "servers" / name / "__init__.py").is_file()
    cls = registry.server_class(name)
    assert cls.__module__ == f"servers.{name}.server"
    assert getattr(importlib.import_module(f"servers.{name}.server"), class_name) is cls


@pytest.mark.parametrize("name", sorted(set(registry.SERVERS) - TESTS_NOT_YET_BY_ROOM))
def test_each_room_has_its_tests_directory(name: str) -> None:
    assert sorted((ROOT / "tests" / name).glob("test_*.py")), f"tests/{name}/ has no tests"


def test_the_lists_of_rooms_not_yet_moved_are_not_stale() -> None:
    for name in ROOMS_NOT_YET_PACKAGES:
        assert not (ROOT / "servers" / name).is_dir(), f"servers/{name}/ exists: take {name} off ROOMS_NOT_YET_PACKAGES"
    for name in TESTS_NOT_YET_BY_ROOM:
        assert not (ROOT / "tests" / name).is_dir(), f"tests/{name}/ exists: take {name} off TESTS_NOT_YET_BY_ROOM"
    assert ROOMS_NOT_YET_PACKAGES <= set(registry.SERVERS) and TESTS_NOT_YET_BY_ROOM <= set(registry.SERVERS)


def test_no_protocol_module_is_left_at_the_top_of_servers() -> None:
    """Top-level modules are the shared parts that are neither a room nor a store."""
    shared = {"__init__", "__main__", "admin", "cli", "registry", "scenario", "shell"}
    modules = {path.stem for path in (ROOT / "servers").glob("*.py")}
    assert modules <= shared, (
        f"{sorted(modules - shared)}: a room goes in servers/<name>/; a shared part is listed here and in CONTRIBUTING.md"
    )
