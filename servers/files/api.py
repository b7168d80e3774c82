"""The files admin API: look into, seed and empty the per-user homes of the FileRoot.

Both file servers (FTP and SFTP) return :func:`file_routes` from ``admin_routes()``;
the admin API mounts each pattern once. Every path goes through
:meth:`FileRoot.resolve`, so the API is confined exactly like the protocols (403 on an
escape). Writes are atomic and durable (:meth:`FileRoot.write_atomic`) and ignore the
user's read-only flag: seeding a read-only user's files is what the API is for.

- ``GET /api/v1/files?user=demo``: the tree of one home (every user without ``user``)
- ``GET /api/v1/files/{user}/{path}``: a file's bytes, or a directory's tree
- ``PUT /api/v1/files/{user}/{path}``: store the request body there (parents created)
- ``POST /api/v1/files/{user}/{path}``: create that directory (parents too); the body is ignored
- ``DELETE /api/v1/files/{user}/{path}``: remove a file or a directory tree
- ``DELETE /api/v1/files/{user}``: remove everything in the user's home
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import schemas
from ..core.web import ApiError, ApiRequest, Query, Reply, Route
from .root import FileRoot, PathEscapeError

if TYPE_CHECKING:
    from ..core.context import Core


def file_routes(core: Core) -> list[Route]:
    api = FilesApi(core.shared(FileRoot), core.users)
    return [
        Route(
            "GET",
            "/api/v1/files",
            api.list_tree,
            "file tree of a user's home (?user=) with sizes and mtimes",
            query=(Query("user", "only this user's home"),),
            reply=schemas.FILE_TREE,
        ),
        Route(
            "GET",
            "/api/v1/files/{user}/{path*}",
            api.read,
            "a file's content (application/octet-stream), or a directory's tree",
            reply=schemas.DIRECTORY,
        ),
        Route(
            "PUT",
            "/api/v1/files/{user}/{path*}",
            api.write,
            "store the request body as a file (seed); 201 when new, 200 (same body) when replaced",
            status=201,
            reply=schemas.FILE_WRITTEN,
        ),
        Route(
            "POST",
            "/api/v1/files/{user}/{path*}",
            api.make_directory,
            "create a directory (parents too); 201 when new, 200 when it exists",
            status=201,
            reply=schemas.DIRECTORY_MADE,
        ),
        Route("DELETE", "/api/v1/files/{user}/{path*}", api.remove, "remove a file or directory", reply=schemas.FILE_REMOVED),
        Route("DELETE", "/api/v1/files/{user}", api.remove_all, "remove all of a user's files", reply=schemas.FILES_REMOVED),
    ]


class FilesApi:
    def __init__(self, root: FileRoot, users: Any):
        self.root = root
        self.users = users

    def list_tree(self, request: ApiRequest) -> Any:
        user = request.arg("user")
        if user is not None:
            self._check_user(user)
            return {"user": user, "files": [entry.as_json() for entry in self.root.tree(user)]}
        return {"users": {name: [entry.as_json() for entry in self.root.tree(name)] for name in self.users.names()}}

    def read(self, request: ApiRequest) -> Any:
        user, path, disk = self._locate(request)
        if disk.is_dir():
            prefix = path.rstrip("/") + "/"
            entries = [e.as_json() for e in self.root.tree(user) if e.path.startswith(prefix) or path == "/"]
            return {"user": user, "path": path, "files": entries}
        if not disk.is_file():
            raise ApiError(404, f"no file {path!r} for user {user!r}")
        return Reply(200, disk.read_bytes(), "application/octet-stream")

    def write(self, request: ApiRequest) -> Reply:
        user, path, disk = self._locate(request)
        if path == "/" or disk.is_dir():
            raise ApiError(409, f"{path!r} is a directory")
        existed = disk.exists()
        self.root.write_atomic(disk, request.body)
        return Reply(200 if existed else 201, {"user": user, "path": path, "bytes": len(request.body)})

    def make_directory(self, request: ApiRequest) -> Reply:
        user, path, disk = self._locate(request)
        if disk.exists() and not disk.is_dir():
            raise ApiError(409, f"{path!r} is a file")
        existed = disk.is_dir()
        disk.mkdir(parents=True, exist_ok=True)
        return Reply(200 if existed else 201, {"user": user, "path": path, "type": "dir"})

    def remove(self, request: ApiRequest) -> Any:
        user, path, disk = self._locate(request, follow_symlinks=False)
        if path == "/":
            return self.remove_all(request)
        if disk.is_dir() and not disk.is_symlink():
            shutil.rmtree(disk)
        elif disk.exists() or disk.is_symlink():
            disk.unlink()
        else:
            raise ApiError(404, f"no file {path!r} for user {user!r}")
        return {"user": user, "removed": path}

    def remove_all(self, request: ApiRequest) -> Any:
        user = request.params["user"]
        self._check_user(user)
        home = self.root.home(user)
        removed = 0
        for child in list(home.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
            removed += 1
        return {"user": user, "removed": removed}

    def _locate(self, request: ApiRequest, follow_symlinks: bool = True) -> tuple[str, str, Path]:
        user = request.params["user"]
        self._check_user(user)
        raw = request.params.get("path", "")
        try:
            path = self.root.normalize(raw, "/")
            return user, path, self.root.resolve(user, path, follow_symlinks=follow_symlinks)
        except PathEscapeError as error:
            raise ApiError(403, f"path refused: {error}") from None

    def _check_user(self, user: str) -> None:
        if user not in self.users and not self.root.is_anonymous(user):
            raise ApiError(404, f"no user {user!r}")
