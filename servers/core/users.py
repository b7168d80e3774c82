"""UserTable: the one set of accounts every authenticating protocol checks.

It is the ``users`` store: the core builds it from the ``[users.*]`` tables (or
``REFSERVERS_USERS``), and its admin routes (``/api/v1/users``) are mounted whenever a
running server logs users in.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import UserSpec
from .store import Store

if TYPE_CHECKING:
    from .context import Core
    from .web import ApiRequest, Reply, Route


@dataclass(frozen=True)
class User:
    name: str
    password: str
    read_only: bool = False
    authorized_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"User(name={self.name!r}, read_only={self.read_only})"


class UserTable(Store):
    """Accounts by name. Thread-safe: protocols may add users on the fly (mail does)."""

    name = "users"
    description = "accounts every protocol logs in against"

    @classmethod
    def from_core(cls, core: Core) -> UserTable:
        return core.users

    def admin_routes(self, core: Core) -> list[Route]:
        from . import schemas
        from .web import Route

        api = UsersApi(self, core)
        return [
            Route("GET", "/api/v1/users", api.list, "accounts of the user table (never passwords)", reply=schemas.USERS),
            Route(
                "POST",
                "/api/v1/users",
                api.add,
                "add an account: {name, password, read_only}",
                body=schemas.NEW_USER,
                status=201,
                reply=schemas.USER,
            ),
            Route("DELETE", "/api/v1/users/{name}", api.remove, "remove an account (its mail and files stay)", reply=schemas.REMOVED),
        ]

    def __init__(self, specs: Iterable[UserSpec] = ()):
        self._users = {
            spec.name: User(spec.name, spec.password, spec.read_only, spec.authorized_keys)
            for spec in specs
        }
        self._lock = threading.Lock()

    def get(self, name: str) -> User | None:
        with self._lock:
            return self._users.get(name)

    def add(self, user: User) -> User:
        with self._lock:
            return self._users.setdefault(user.name, user)

    def set(self, user: User) -> None:
        """Add ``user``, or replace the account of that name (a scenario applied again)."""
        with self._lock:
            self._users[user.name] = user

    def remove(self, name: str) -> bool:
        """Forget an account (the admin API's DELETE /api/v1/users/{name}); True if it existed."""
        with self._lock:
            return self._users.pop(name, None) is not None

    def check_password(self, name: str, password: str) -> User | None:
        """The user if the password matches (compared in constant time), else None."""
        user = self.get(name)
        if user is None:
            # Compare anyway so an unknown name costs the same as a wrong password.
            hmac.compare_digest(password.encode(), b"\0" * max(1, len(password)))
            return None
        if hmac.compare_digest(user.password.encode(), password.encode()):
            return user
        return None

    def __iter__(self) -> Iterator[User]:
        with self._lock:
            return iter(list(self._users.values()))

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._users

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._users)


class UsersApi:
    def __init__(self, users: UserTable, core: Core):
        self.users = users
        self.core = core

    def list(self, request: ApiRequest) -> Any:
        # Whether a user has a mailbox is shown when the mail store is in use.
        mail: Any = self.core.built_store("mail")
        mailboxes = set(mail.mailbox_users()) if mail is not None else None
        entries = []
        for user in sorted(self.users, key=lambda user: user.name):
            entry: dict[str, Any] = {"name": user.name, "read_only": user.read_only}
            if mailboxes is not None:
                entry["mailbox"] = user.name in mailboxes
            entries.append(entry)
        return {"users": entries}

    def add(self, request: ApiRequest) -> Reply:
        from .web import ApiError, Reply

        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, "expected a JSON object {name, password, read_only}")
        name, password, read_only = body.get("name"), body.get("password"), body.get("read_only", False)
        if not isinstance(name, str) or not name or any(c in name for c in "/\0\r\n") or name.strip() != name:
            raise ApiError(400, "name: expected a non-empty string without '/', NUL, CR, LF or outer spaces")
        if not isinstance(password, str):
            raise ApiError(400, "password: expected a string")
        if not isinstance(read_only, bool):
            raise ApiError(400, "read_only: expected true or false")
        if name in self.users:
            raise ApiError(409, f"user {name!r} exists")
        self.users.add(User(name, password, read_only))
        return Reply(201, {"name": name, "read_only": read_only})

    def remove(self, request: ApiRequest) -> Any:
        from .web import ApiError

        name = request.params["name"]
        if not self.users.remove(name):
            raise ApiError(404, f"no user {name!r}")
        return {"removed": name}
