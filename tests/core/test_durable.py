"""EarlyWriteback: an upload's data is flushed and synced step by step while it arrives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servers.core.durable import EarlyWriteback

STEP = 1000


def test_nothing_is_synced_before_a_step_is_reached(tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    with EarlyWriteback(str(path), "wb", step=STEP) as upload:
        upload.write(b"a" * (STEP - 1))
        assert not upload.writeback_started
        assert path.stat().st_size == 0  # still in the buffer
    assert path.read_bytes() == b"a" * (STEP - 1)


def test_each_step_flushes_and_syncs_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    fds_before = len(os.listdir("/proc/self/fd"))
    with EarlyWriteback(str(path), "wb", step=STEP) as upload:
        upload.write(b"a" * 600)
        upload.write(b"b" * 600)  # crosses the step
        assert upload.writeback_started
        upload.join_writeback()
        # Handed to the kernel before close, so the sync had something to write.
        assert path.read_bytes() == b"a" * 600 + b"b" * 600
        upload.write(b"c" * 10)
    assert path.read_bytes() == b"a" * 600 + b"b" * 600 + b"c" * 10
    assert len(os.listdir("/proc/self/fd")) == fds_before  # the sync's own descriptor is closed


@pytest.mark.parametrize(
    ("mode", "offset", "expected"),
    [
        ("ab", None, b"old" + b"x" * (3 * STEP)),  # APPE
        ("r+b", 1, b"o" + b"x" * (3 * STEP)),  # STOR after REST 1
        ("wb", None, b"x" * (3 * STEP)),
    ],
)
def test_upload_modes_keep_their_meaning(tmp_path: Path, mode: str, offset: int | None, expected: bytes) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"old")
    with EarlyWriteback(str(path), mode, step=STEP) as upload:
        if offset is not None:
            upload.seek(offset)
        for _ in range(3):
            upload.write(b"x" * STEP)
        upload.join_writeback()
    assert path.read_bytes() == expected
    assert upload.name == str(path)  # pyftpdlib and the journal read the name


def test_a_vanished_file_does_not_break_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "upload.bin"
    with EarlyWriteback(str(path), "wb", step=STEP) as upload:
        path.unlink()  # the sync thread cannot reopen it: it must give up quietly
        upload.write(b"x" * STEP)
        upload.join_writeback()
        upload.write(b"y")
