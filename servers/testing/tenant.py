"""Tenant: one test's own user, mailbox, file home and fault rules on servers it shares.

Parallel tests (``pytest -n``) against one running ``refservers up`` share its user
table, mail store, file root and fault book. A tenant gives each test a namespace in
all four at once: a user whose name is a mail address (``t-gw3-5f0c9a1e@example.com``),
so one string is the SMTP recipient, the login of every protocol and the ``user`` of
fault rules (docs/faults.md, "User-scoped rules"), with a random password. Its mail
is the mailbox of that user, its files the home of that user, its faults the rules
scoped to that user, and :meth:`Tenant.cleanup` removes all of them and the user.

Everything goes through the admin API (:class:`AdminDirectory` says which one serves
which server), in-process and remote alike, so a suite checks the same code path in
both modes. The user is added to every admin API the directory knows, since separate
processes (the compose stack's containers) keep separate user tables.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import registry
from .admin_client import AdminApiError, AdminClient
from .remote import TARGET, _host_port, remote_address

# The default mail domains include example.com, and a user named by a full address
# receives that address's mail under every recipient policy (servers/mail/store.py).
TENANT_DOMAIN = "example.com"
# Servers whose store the tenant's mail and files live in (their admin API serves it).
MAIL_SERVERS = ("smtp", "pop3", "imap")
FILE_SERVERS = ("ftp", "sftp", "telnet")
# A long poll's HTTP timeout is its own timeout plus this margin, so a 408 arrives
# before the socket gives up.
WAIT_MARGIN_SECONDS = 10.0


def tenant_address(worker: str, token: str | None = None) -> str:
    """``t-<worker>-<random>@example.com``: unique per test, readable in a journal.

    Lower case: mail domains are, and a user-scoped rule compares addresses ignoring case.
    """
    token = token or secrets.token_hex(4)
    return f"t-{worker}-{token}@{TENANT_DOMAIN}".lower()


@dataclass(frozen=True)
class AdminDirectory:
    """Which admin API serves each server: one for an in-process core or a shared
    ``refservers up``, one per container for the compose stack."""

    per_server: Mapping[str, str]  # server -> admin base URL
    default: str | None = None  # for servers without their own

    @classmethod
    def single(cls, url: str) -> AdminDirectory:
        return cls({}, url)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AdminDirectory:
        """The remote targets' admin APIs: ``REFSERVERS_TARGET_<NAME>_ADMIN`` for one
        server, ``REFSERVERS_TARGET_ADMIN`` (or ``REFSERVERS_TARGET=container``'s
        127.0.0.1:8025) for the rest; only servers that are remote targets count."""
        fallback = remote_address("admin", env)
        default = _url(fallback) if fallback else None
        per_server = {}
        for name in registry.SERVERS:
            if remote_address(name, env) is None:
                continue
            own = env.get(f"{TARGET}_{name.upper()}_ADMIN")
            if own:
                per_server[name] = _url(_host_port(own, f"{TARGET}_{name.upper()}_ADMIN"))
            elif default:
                per_server[name] = default
        return cls(per_server)  # servers started in-process have no admin API here

    def url(self, server: str) -> str:
        found = self.per_server.get(server, self.default)
        if found is None:
            raise LookupError(
                f"no admin API known for {server}: set {TARGET}_{server.upper()}_ADMIN=host:port "
                f"(or {TARGET}_ADMIN for a shared `refservers up`)"
            )
        return found

    def urls(self, servers: Iterable[str] | None = None) -> list[str]:
        """The distinct admin APIs serving ``servers`` (all known ones without)."""
        if servers is None:
            found = [*self.per_server.values(), *([self.default] if self.default else [])]
        else:
            found = [url for server in servers if (url := self.per_server.get(server, self.default))]
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Mail:
    """One of the tenant's messages as the messages API summarises it (``data``)."""

    id: str
    subject: str
    data: Mapping[str, Any]

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> Mail:
        """From a Mailpit-shaped summary (``GET /api/v1/messages``, ``/wait``)."""
        return cls(str(summary["ID"]), str(summary["Subject"]), summary)


@dataclass
class Tenant:
    """A test's namespace on shared servers; made by the ``refservers_tenant`` fixture.

    ``address`` is also ``login`` and ``user`` (the same string everywhere); ``password``
    logs in on every protocol.

    :raises AdminApiError: when an admin call is refused (the message says why).
    """

    address: str
    password: str = field(repr=False)  # never in a failure report
    admins: AdminDirectory = field(default_factory=lambda: AdminDirectory({}))
    fault_ids: dict[str, str] = field(default_factory=dict)  # rule id -> server
    registered: list[str] = field(default_factory=list, repr=False)  # admin APIs holding the user

    @classmethod
    def new(cls, admins: AdminDirectory, worker: str = "main") -> Tenant:
        """A fresh tenant (random address and password), added to every admin API."""
        return cls(tenant_address(worker), secrets.token_urlsafe(12), admins).create()

    @property
    def login(self) -> str:
        return self.address

    @property
    def user(self) -> str:
        return self.address

    def create(self) -> Tenant:
        """Add the user to every admin API's user table (its mailbox and home follow
        on first use: the first delivery, the first login)."""
        try:
            for url in self.admins.urls():
                AdminClient(url).post("/api/v1/users", {"name": self.address, "password": self.password})
                self.registered.append(url)
        except BaseException:
            self.cleanup()  # the admin APIs that took the user forget it again
            raise
        return self

    # -- faults --------------------------------------------------------------------------
    def add_fault(
        self,
        server: str,
        action: str,
        match: str = "*",
        params: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> str:
        """Add a rule on ``server`` that fires only for this tenant; return its id.

        ``fields`` are the rule's other fields (``times``, ``probability``, ``seed``).
        """
        rule = {"server": server, "action": action, "match": match, "user": self.address, **fields}
        if params:
            rule["params"] = dict(params)
        added = AdminClient(self.admins.url(server)).post("/api/v1/faults", rule)
        rule_id = str(added["faults"][0]["id"])
        self.fault_ids[rule_id] = server
        return rule_id

    def remove_fault(self, rule_id: str) -> None:
        server = self.fault_ids.pop(rule_id)
        try:
            AdminClient(self.admins.url(server)).delete(f"/api/v1/faults/{urllib.parse.quote(rule_id)}")
        except AdminApiError as error:
            if error.status != 404:  # 404: already gone (a reset); nothing to remove
                raise

    def faults(self) -> list[dict[str, Any]]:
        """This tenant's rules as the admin APIs list them."""
        found = []
        for url in self.admins.urls():
            found += [rule for rule in AdminClient(url).get("/api/v1/faults")["faults"] if rule.get("user") == self.address]
        return found

    # -- mail ----------------------------------------------------------------------------
    def messages(self, **filters: Any) -> list[Mail]:
        """This tenant's messages, newest first, all of them (more filters: ``subject``,
        ``from``...; ``limit`` and ``start`` page as in Mailpit)."""
        filters.setdefault("limit", 0)  # every message, not Mailpit's first page of 50
        listing = self._mail_admin().get("/api/v1/messages", user=self.address, **filters)
        return [Mail.from_summary(summary) for summary in listing["messages"]]

    def wait_for_mail(self, subject: str | None = None, timeout: float = 10.0, **filters: Any) -> Mail:
        """Block until a message for this tenant (whose subject contains ``subject``) is
        stored, and return the newest such; the server's long poll does the waiting.

        :raises TimeoutError: when none arrived within ``timeout`` seconds.
        """
        query = {"user": self.address, "subject": subject, "timeout": timeout, **filters}
        try:
            summary = self._mail_admin().request(
                "GET", "/api/v1/messages/wait", query=query, timeout=timeout + WAIT_MARGIN_SECONDS
            )
        except AdminApiError as error:
            if error.status == 408:
                raise TimeoutError(f"no mail for {self.address} (subject {subject!r}) within {timeout}s") from None
            raise
        return Mail.from_summary(summary)

    def _mail_admin(self) -> AdminClient:
        return AdminClient(self.admins.url(_first_served(self.admins, MAIL_SERVERS)))

    # -- files ---------------------------------------------------------------------------
    def files(self) -> list[dict[str, Any]]:
        """The tree of this tenant's home (path, size, mtime) as the files API lists it."""
        url = self.admins.url(_first_served(self.admins, FILE_SERVERS))
        return list(AdminClient(url).get("/api/v1/files", user=self.address)["files"])

    # -- the end -------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Remove this tenant's fault rules, messages and files, then the user.

        Every step is tried; the first failure is raised at the end. Routes a process
        does not serve (no mail server there: 404) have nothing of the tenant's.
        """
        failures: list[Exception] = []

        def attempt(call: Any, *args: Any, **kwargs: Any) -> None:
            try:
                call(*args, **kwargs)
            except AdminApiError as error:
                if error.status != 404:
                    failures.append(error)
            except OSError as error:
                failures.append(error)

        for rule_id in list(self.fault_ids):
            attempt(self.remove_fault, rule_id)
        for url in self.admins.urls(MAIL_SERVERS):
            attempt(AdminClient(url).delete, "/api/v1/messages", user=self.address)
        quoted = urllib.parse.quote(self.address, safe="@")
        for url in self.admins.urls(FILE_SERVERS):
            attempt(AdminClient(url).delete, f"/api/v1/files/{quoted}")
        for url in self.registered:
            attempt(AdminClient(url).delete, f"/api/v1/users/{quoted}")
        self.registered.clear()
        if failures:
            raise failures[0]


def _first_served(admins: AdminDirectory, servers: Iterable[str]) -> str:
    """The first of ``servers`` an admin API is known for (so its error names it)."""
    servers = list(servers)
    return next((server for server in servers if admins.urls([server])), servers[0])


def _url(address: tuple[str, int]) -> str:
    host, port = address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
