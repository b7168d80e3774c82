"""SFTP, scp and SSH exec/shell on asyncssh: see :mod:`servers.sftp.server`."""

from .server import SftpServer

__all__ = ["SftpServer"]
