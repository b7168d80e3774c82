"""UserTable: the one set of accounts every authenticating protocol checks."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .config import UserSpec


@dataclass(frozen=True)
class User:
    name: str
    password: str
    read_only: bool = False
    authorized_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"User(name={self.name!r}, read_only={self.read_only})"


class UserTable:
    """Accounts by name. Thread-safe: protocols may add users on the fly (mail does)."""

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
