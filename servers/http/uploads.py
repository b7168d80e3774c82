"""UploadStore: files received by ``POST /upload``, kept under ``<data_dir>/http/uploads``.

Rules: a client is told a file is stored only after it is durable (written to a temp
file in the same directory, fsynced, renamed over the final name, directory fsynced),
and a client-supplied file name can never leave the directory: only its last path
component is kept, reduced to a safe character set.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.durable import write_atomic

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str | None) -> str:
    """The last component of ``name`` (either slash), safe characters only, never empty or dotted."""
    base = re.split(r"[/\\]", name or "")[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip(".")[:200]
    return cleaned or "upload.bin"


@dataclass(frozen=True)
class StoredFile:
    field: str
    filename: str
    size: int
    sha256: str
    content_type: str


class UploadStore:
    def __init__(self, directory: Path):
        self.directory = directory

    def save(self, field: str, client_name: str | None, content_type: str, data: bytes) -> StoredFile:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = safe_filename(client_name)
        target = self.directory / name
        # Belt and braces: the name is already one safe component.
        if target.resolve().parent != self.directory.resolve():
            raise ValueError(f"refusing upload name {client_name!r}")
        write_atomic(target, data)
        return StoredFile(field, name, len(data), hashlib.sha256(data).hexdigest(), content_type)

    def list(self) -> list[dict[str, object]]:
        if not self.directory.is_dir():
            return []
        return [
            {"filename": path.name, "size": path.stat().st_size}
            for path in sorted(self.directory.iterdir())
            if path.is_file() and not path.name.startswith(".upload-")
        ]
