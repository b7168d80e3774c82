"""The pinned set in requirements/ covers what pyproject.toml asks for: a dependency added
to pyproject.toml without `make lock` would be missing from `make install`, the images
and CI, and fail here by name instead."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s\[<>=!~;]", item.strip(), maxsplit=1)[0].lower().replace("_", "-") for item in requirements}


def pinned(lock: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s\\]+)", lock.read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in found}


def test_every_dependency_is_pinned_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = names(project["dependencies"])
    test = names(project["optional-dependencies"]["test"])
    for lock, wanted in (("runtime.txt", runtime), ("test.txt", runtime | test)):
        path = ROOT / "requirements" / lock
        missing = sorted(wanted - set(pinned(path)))
        assert not missing, f"requirements/{lock} lacks {missing}: run `make lock`"
        assert "--hash=sha256:" in path.read_text()
    # The images install runtime.txt: nothing test-only may slip into them.
    assert not {"pytest", "ruff", "mypy"} & set(pinned(ROOT / "requirements" / "runtime.txt"))
