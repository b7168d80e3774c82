"""Debian's chromium driven by Playwright for Python: the one way the console tests,
``make screenshots`` and the console benchmark start a browser.

Playwright's own browser download needs the internet, which CI here does not have, so
the browser is the distribution's (``chromium`` in .ci/apt-packages.txt), passed as
``executable_path``; ``playwright install`` is never run.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """REFSERVERS_CHROMIUM, else Debian's /usr/bin/chromium (None when neither exists)."""
    configured = os.environ.get("REFSERVERS_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )


def launch_chromium(playwright: Any) -> Any:
    path = chromium_path()
    if path is None:
        raise RuntimeError("no chromium: apt-get install chromium (see .ci/apt-packages.txt) or set REFSERVERS_CHROMIUM")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
