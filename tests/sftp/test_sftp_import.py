"""Importing the SFTP room runs no compiler: asyncssh's library lookups ask ldconfig only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

RECORD_SPAWNS = """
import ctypes.util, json, subprocess
spawned = []
real_popen_init = subprocess.Popen.__init__
def recording_init(self, args, *rest, **options):
    spawned.append(args if isinstance(args, str) else list(map(str, args)))
    real_popen_init(self, args, *rest, **options)
subprocess.Popen.__init__ = recording_init
find_library = ctypes.util.find_library
import servers.sftp
print(json.dumps({"spawned": spawned, "restored": ctypes.util.find_library is find_library}))
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="without gcc, find_library never links a test program")
def test_importing_sftp_runs_ldconfig_at_most_and_restores_find_library() -> None:
    done = subprocess.run([sys.executable, "-c", RECORD_SPAWNS], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(done.stdout.splitlines()[-1])
    programs = [command[0] if isinstance(command, list) else command.split()[0] for command in report["spawned"]]
    assert all(program.endswith("ldconfig") for program in programs), programs
    assert report["restored"]
