"""SFTP, scp and SSH exec/shell on asyncssh: see :mod:`servers.sftp.server`."""

import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def libraries_found_by_ldconfig_alone() -> Iterator[None]:
    """While asyncssh is first imported, ``ctypes.util.find_library`` asks ldconfig's cache only.

    At import asyncssh looks for liboqs (post-quantum key exchange) with find_library.
    Where it is not installed (Debian 12 packages none), CPython goes on from ldconfig to
    linking a test program with gcc and then ld: 50-200 ms of every start that includes
    SFTP. A liboqs installed where the dynamic loader would find it is in ldconfig's cache,
    so asyncssh still finds it. ``_findSoname_ldconfig`` is CPython's private first step
    (Linux); where it is absent, find_library is left as it is.
    """
    by_ldconfig = getattr(ctypes.util, "_findSoname_ldconfig", None)
    if by_ldconfig is None:
        yield
        return
    find_library = ctypes.util.find_library
    ctypes.util.find_library = by_ldconfig
    try:
        yield
    finally:
        ctypes.util.find_library = find_library


with libraries_found_by_ldconfig_alone():
    import asyncssh  # noqa: F401 - imported here, first, for the context above

from .server import SftpServer  # noqa: E402

__all__ = ["SftpServer"]
