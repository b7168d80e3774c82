"""The shared file root FTP and SFTP serve (root.py) and its admin API (api.py)."""

from .root import ANONYMOUS, FILE_ROOT_OPTIONS, FileEntry, FileRoot, PathEscapeError

__all__ = ["ANONYMOUS", "FILE_ROOT_OPTIONS", "FileEntry", "FileRoot", "PathEscapeError"]
