"""pytest plugin (entry point ``pytest11``): a fixture per server, started in-process.

``refservers_<name>`` starts that server on free ports with a temporary data dir and
yields the running :class:`~servers.core.Server` (``host``, ``port``, ``url``,
``listeners``, ``journal``, ``data_dir``, ``core``). Fixtures requested by one test
share one :class:`~servers.core.Core`, so ``refservers_smtp`` and ``refservers_imap``
see the same mail store. Override ``refservers_settings`` (a list of
``section.key=value`` strings) to configure them.

``refservers_http`` also stubs like WireMock, with the same engine as its ``/__admin``
API: ``refservers_http.stub({"request": ..., "response": ...})`` adds a mapping,
``.requests(pattern)`` lists journalled requests matching a WireMock request pattern,
``.verify(pattern, count=None)`` asserts on them (see docs/stubs.md). Against a remote
target the same calls go over its ``/__admin`` API (servers/http/stubs/client.py).

Remote targets (``REFSERVERS_TARGET=container``, ``REFSERVERS_TARGET_<NAME>=host:port``):
the fixtures yield a :class:`~servers.testing.remote.RemoteServer` for servers already
running elsewhere (the compose stack) instead of starting them; see remote.py.

``refservers_tenant`` gives a test its own user (a mail address, with a random
password), mailbox, file home and user-scoped fault rules, removed after the test, so
parallel tests can share one running ``refservers up``; see tenant.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .. import registry
from ..core import Core, EventLoop, Server, load_config
from ..core.config import PORT
from .remote import CONTAINER_MODE, TARGET, RemoteServer, remote_address, target_mode
from .tenant import AdminDirectory, Tenant


def pytest_configure(config: pytest.Config) -> None:
    # Test modules import protocol libraries as they are collected (twisted.mail.pop3
    # imports the reactor); Twisted's asyncio reactor must be installed before that, or
    # the default one is and every later server start fails.
    EventLoop.shared()


@pytest.fixture
def refservers_settings() -> list[str]:
    """Extra ``section.key=value`` settings for this test's servers (override me)."""
    return []


@pytest.fixture
def refservers_scenario() -> Any:
    """A scenario applied to this test's core before its servers start (override me):
    a dict in the scenario format, or the path of a TOML/JSON scenario file."""
    return None


@pytest.fixture
def refservers_core(
    tmp_path_factory: pytest.TempPathFactory, refservers_settings: list[str], refservers_scenario: Any
) -> Iterator[Core]:
    if os.environ.get(TARGET) == CONTAINER_MODE:
        pytest.skip(f"needs an in-process core; servers are remote targets here ({TARGET}={CONTAINER_MODE})")
    schema = registry.schema()
    overrides = [f"core.data_dir={tmp_path_factory.mktemp('refservers')}"]
    for section, options in schema.items():
        overrides += [f"{section}.{o.key}=0" for o in options if o.kind is PORT]
        if section in registry.SERVERS or section == "admin":
            overrides += [f"{section}.{key}={value}" for key, value in registry.server_class(section).test_settings.items()]
    # The environment is not consulted: fixtures must not depend on the caller's shell.
    config = load_config(schema, env={}, overrides=overrides + list(refservers_settings), renamed=registry.RENAMED_OPTIONS)
    core = registry.make_core(config)
    if refservers_scenario is not None:
        _apply_start_scenario(core, refservers_scenario)
    yield core
    core.stop_all()


def _apply_start_scenario(core: Core, document: Any) -> None:
    from ..scenario import ScenarioRunner, load, parse

    scenario = parse(document) if isinstance(document, dict) else load(Path(document))
    if scenario.proxies:  # TCP proxies live in the proxy server
        registry.server_class("proxy")(core.config["proxy"], core).start()
    runner = core.shared(ScenarioRunner)
    runner.start = scenario
    runner.apply(scenario)


@pytest.fixture
def refservers_start(request: pytest.FixtureRequest) -> Callable[..., Server]:
    """``refservers_start("smtp", require_auth="true")``: start a server with extra settings.

    For a remote target (see remote.py) it returns the running remote server;
    asking for other settings skips the test, as a running container cannot take them.
    """
    started: dict[str, Server] = {}

    def start(name: str, **settings: Any) -> Server:
        if name in started and not settings:
            return started[name]
        remote = remote_address(name, os.environ)
        if remote is not None:
            if settings:
                pytest.skip(f"needs {name} started with {sorted(settings)}; {name} is a remote target here ({TARGET})")
            handle: Any = RemoteServer(name, *remote, os.environ)
            started[name] = handle
            return started[name]
        refservers_core: Core = request.getfixturevalue("refservers_core")
        section = refservers_core.config[name]
        if settings:
            section = section.replace(**{k: _coerce(registry.server_class(name), k, v) for k, v in settings.items()})
        server = registry.server_class(name)(section, refservers_core).start()
        started.setdefault(name, server)
        return server

    return start


def _coerce(cls: type[Server], key: str, value: Any) -> Any:
    option = next((o for o in cls.all_options() if o.key == key), None)
    if option is None:
        raise KeyError(f"{cls.name} has no option {key!r}")
    return option.kind.from_text(value) if isinstance(value, str) else value


@pytest.fixture
def refservers_store(refservers_core: Core) -> Callable[..., Any]:
    """``refservers_store("mail", unknown_recipients="reject")``: this test's store of that
    name (``mail``, ``files``, ``users``), with settings of its section changed first.

    Stores are shared by every server of the test, so set them before starting the
    servers that use them (or between their uses).
    """

    def store(name: str, **settings: Any) -> Any:
        instance = refservers_core.store(name)
        if settings:
            cls = registry.store_class(name)
            options = {o.key: o for o in cls.options}
            current = {key: getattr(refservers_core.config[name], key) for key in options}
            for key, value in settings.items():
                if key not in options:
                    raise KeyError(f"store {name} has no option {key!r} (known: {', '.join(options)})")
                current[key] = options[key].kind.from_text(value) if isinstance(value, str) else value
            instance.configure(**current)  # type: ignore[attr-defined]
        return instance

    return store


@dataclass(frozen=True)
class FileServers:
    """FTP and SFTP started on one core, so both serve the same :class:`FileRoot`."""

    ftp: Server
    sftp: Server
    root: Any  # servers.files.root.FileRoot


@pytest.fixture
def refservers_files(refservers_start: Callable[..., Server]) -> FileServers:
    """``.ftp`` and ``.sftp`` running on one shared file root (``.root``)."""
    from ..files.root import FileRoot

    ftp = refservers_start("ftp")
    sftp = refservers_start("sftp")
    return FileServers(ftp, sftp, ftp.core.shared(FileRoot))


@dataclass
class MailServers:
    """SMTP, POP3 and IMAP started on one core, so all three share one MailStore."""

    smtp: Server
    pop3: Server
    imap: Server
    store: Any  # servers.mail.store.MailStore


@pytest.fixture
def refservers_mail(refservers_start: Callable[..., Server]) -> MailServers:
    """``.smtp``, ``.pop3`` and ``.imap`` running on one shared mail store (``.store``)."""
    from ..mail.store import MailStore

    smtp = refservers_start("smtp")
    return MailServers(smtp, refservers_start("pop3"), refservers_start("imap"), smtp.core.shared(MailStore))


@pytest.fixture
def refservers_tenant(refservers_start: Callable[..., Server]) -> Iterator[Tenant]:
    """This test's own user, mailbox, file home and fault rules (see tenant.py).

    ``.address`` (= ``.login`` = ``.user``) and ``.password`` log in everywhere;
    ``.add_fault("smtp", "error", "RCPT*", {...})`` fires for this test only;
    ``.wait_for_mail(subject=...)`` and ``.messages()`` see only its mail. All of it
    and the user are removed after the test. In-process it uses this test's admin API;
    with remote targets, theirs (``REFSERVERS_TARGET_<NAME>_ADMIN`` or
    ``REFSERVERS_TARGET_ADMIN``).
    """
    if target_mode(os.environ):
        admins = AdminDirectory.from_env(os.environ)
        if not admins.urls():
            pytest.skip(f"needs the remote targets' admin API: set {TARGET}_<NAME>_ADMIN or {TARGET}_ADMIN")
    else:
        admins = AdminDirectory.single(refservers_start("admin").url)
    # The xdist worker ("gw3") in the name tells whose traffic a journal shows.
    tenant = Tenant.new(admins, os.environ.get("PYTEST_XDIST_WORKER", "main"))
    try:
        yield tenant
    finally:
        tenant.cleanup()


def _server_fixture(name: str) -> Any:
    def fixture(refservers_start: Callable[..., Server]) -> Server:
        return refservers_start(name)

    fixture.__name__ = f"refservers_{name}"
    fixture.__doc__ = f"A running {name} server on free ports (stopped after the test)."
    return pytest.fixture(fixture, name=f"refservers_{name}")


for _name in [*registry.SERVERS, "admin"]:
    globals()[f"refservers_{_name}"] = _server_fixture(_name)
