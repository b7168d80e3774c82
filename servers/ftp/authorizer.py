"""UserTableAuthorizer: pyftpdlib's authorizer interface over the shared UserTable.

pyftpdlib asks its authorizer four things: is this password right, where is the
home, which permission letters does the user have, and what to say at login and quit.
The answers come from the core's UserTable and the shared FileRoot, so FTP accepts
exactly the accounts SFTP, mail and telnet accept.

Permission letters (pyftpdlib's): ``e`` change directory, ``l`` list, ``r`` retrieve;
``a`` append, ``d`` delete, ``f`` rename, ``m`` make directory, ``w`` store, ``M`` chmod,
``T`` set modification time.
"""

from __future__ import annotations

from typing import Any

from pyftpdlib.authorizers import AuthenticationFailed

from ..files.root import FileRoot

READ_PERMS = "elr"
WRITE_PERMS = "elradfmwMT"


class UserTableAuthorizer:
    def __init__(self, users: Any, file_root: FileRoot):
        self.users = users
        self.file_root = file_root

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        if self.file_root.is_anonymous(username):
            return  # RFC 1635: any password (traditionally an e-mail address)
        if self.users.check_password(username, password) is None:
            raise AuthenticationFailed("Authentication failed.")

    def get_home_dir(self, username: str) -> str:
        return str(self.file_root.home(username))

    def has_user(self, username: str) -> bool:
        return username in self.users or self.file_root.is_anonymous(username)

    def get_perms(self, username: str) -> str:
        return WRITE_PERMS if self.file_root.can_write(username) else READ_PERMS

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        return perm in self.get_perms(username)

    def get_msg_login(self, username: str) -> str:
        if self.file_root.is_anonymous(username):
            return "Anonymous login ok, read-only access."
        return "Login successful."

    def get_msg_quit(self, username: str) -> str:
        return "Goodbye."

    # Every user is served by this process's own account: nothing to switch.
    def impersonate_user(self, username: str, password: str) -> None:
        pass

    def terminate_impersonation(self, username: str) -> None:
        pass
