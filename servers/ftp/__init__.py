"""FTP and FTPS (explicit and implicit) on pyftpdlib, serving the shared file root."""

from .server import FtpServer

__all__ = ["FtpServer"]
