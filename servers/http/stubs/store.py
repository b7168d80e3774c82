"""Mapping files in WireMock's directory layout: ``mappings/*.json`` and ``__files/``.

Persistence follows WireMock 3 (wiremock.org/docs/stubbing, "Saving stubs"):

- the writable root is ``http.stubs_dir`` (default ``<data_dir>/stubs/``); stub packs
  (every directory with a ``mappings/`` under ``http.stub_packs``, default
  ``configs/stubs``) are loaded read-only and never written;
- ``persistent: true`` writes the mapping file at once; ``/__admin/mappings/save``
  writes every in-memory stub; deleting a persistent stub deletes its file;
- a file holds one mapping or ``{"mappings": [...]}`` (WireMock reads both), and
  ``mappings/`` is read recursively in file name order.

A file that does not parse raises :class:`StubFileError`, one line naming the file and
the field; start-up turns it into a ConfigError.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ...core.durable import write_atomic
from .mappings import StubMapping, mappings_in_document, parse_mapping
from .matching import StubFormatError


class StubFileError(ValueError):
    """A mapping file that is not valid WireMock JSON (``str()`` is ``file: field: why``)."""


def safe_name(text: str) -> str:
    """WireMock's file names: the stub's name or URL, reduced to safe characters."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower()
    return slug[:60] or "mapping"


def mapping_file_name(stub: StubMapping) -> str:
    request = stub.json.get("request", {})
    label = stub.name or next((request[k] for k in ("url", "urlPath", "urlPathTemplate", "urlPattern", "urlPathPattern") if isinstance(request.get(k), str)), "")
    return f"{safe_name(label)}-{stub.id}.json"


def read_mapping_file(path: Path, files_dir: Path, read_only: bool) -> list[StubMapping]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise StubFileError(f"{path}: not UTF-8 text ({error.reason})") from None
    except ValueError as error:
        raise StubFileError(f"{path}: invalid JSON: {error}") from None
    stubs = []
    for where, spec in mappings_in_document(document):
        try:
            stub = parse_mapping(spec, where)
        except StubFormatError as error:
            raise StubFileError(f"{path}: {error}") from None
        stub.source, stub.read_only, stub.files_dir = path, read_only, files_dir
        stub.persistent = stub.persistent or not read_only
        stubs.append(stub)
    return stubs


class StubDirectory:
    """One directory in WireMock's layout; writable (the stubs dir) or a read-only pack."""

    def __init__(self, root: Path, read_only: bool):
        self.root = root
        self.read_only = read_only

    @property
    def mappings_dir(self) -> Path:
        return self.root / "mappings"

    @property
    def files_dir(self) -> Path:
        return self.root / "__files"

    def load(self) -> list[StubMapping]:
        if not self.mappings_dir.is_dir():
            return []
        stubs: list[StubMapping] = []
        for path in sorted(self.mappings_dir.rglob("*.json")):
            stubs += read_mapping_file(path, self.files_dir, self.read_only)
        return stubs

    def ensure(self) -> None:
        self.mappings_dir.mkdir(parents=True, exist_ok=True)
        self.files_dir.mkdir(parents=True, exist_ok=True)

    def write(self, stub: StubMapping) -> None:
        """Write (or rewrite) the stub's own file; a stub from a shared file rewrites that file."""
        self.ensure()
        if stub.source is None or stub.read_only or not stub.source.is_relative_to(self.root):
            stub.source = self.mappings_dir / mapping_file_name(stub)
        stub.read_only, stub.files_dir = False, self.files_dir
        self._write_json(stub.source, stub.as_json())

    def delete(self, stub: StubMapping, siblings: list[StubMapping]) -> None:
        """Remove the stub from its file; ``siblings`` are the other stubs loaded from it."""
        if stub.source is None or stub.read_only or not stub.source.is_relative_to(self.root):
            return
        others = [s for s in siblings if s.source == stub.source and s.id != stub.id]
        if others:
            self._write_json(stub.source, {"mappings": [s.as_json() for s in others]})
        else:
            stub.source.unlink(missing_ok=True)
        stub.source = None

    def write_body_file(self, name: str, data: bytes) -> None:
        self.ensure()
        write_atomic(self.files_dir / name, data)

    @staticmethod
    def _write_json(path: Path, document: Any) -> None:
        write_atomic(path, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())


def find_packs(base: Path) -> list[StubDirectory]:
    """Every directory under ``base`` (itself included) that has a ``mappings/`` folder."""
    if not base.is_dir():
        return []
    roots = sorted({path.parent for path in base.rglob("mappings") if path.is_dir()})
    return [StubDirectory(root, read_only=True) for root in roots]
