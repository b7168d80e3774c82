"""FileRoot rules: homes, seeding, confinement (.., absolute, encoded, NUL, symlinks),
write permission, transfer journal events and atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servers.core import EventJournal, UserTable
from servers.core.config import UserSpec
from servers.files.root import ANONYMOUS, FileRoot, PathEscapeError


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    (seed / "docs").mkdir(parents=True)
    (seed / "hello.txt").write_text("hello\n")
    (seed / "docs" / "readme.md").write_text("# readme\n")
    (seed / "docs" / "readme.md").chmod(0o444)  # a read-only seed must not block writes
    return seed


@pytest.fixture
def root(tmp_path: Path, seed: Path) -> FileRoot:
    users = UserTable([UserSpec("demo", "demo"), UserSpec("viewer", "viewer", read_only=True)])
    return FileRoot(tmp_path / "files", users, EventJournal(), seed_dir=seed, anonymous=True)


def test_home_is_created_seeded_and_writable(root: FileRoot) -> None:
    home = root.home("demo")
    assert home == root.root / "home" / "demo"
    assert (home / "hello.txt").read_text() == "hello\n"
    readme = home / "docs" / "readme.md"
    assert readme.stat().st_mode & 0o600 == 0o600
    readme.write_text("changed\n")


def test_seeding_never_overwrites(root: FileRoot, seed: Path) -> None:
    home = root.home("demo")
    (home / "hello.txt").write_text("mine\n")
    fresh = FileRoot(root.root, root.users, root.journal, seed_dir=seed)
    fresh.prepare_homes()
    assert (home / "hello.txt").read_text() == "mine\n"
    assert (fresh.root / "home" / "viewer" / "hello.txt").exists()


@pytest.mark.parametrize(
    ("path", "cwd", "expected"),
    [
        ("hello.txt", "/", "hello.txt"),
        ("/docs/readme.md", "/anything", "docs/readme.md"),
        ("readme.md", "/docs", "docs/readme.md"),
        ("../hello.txt", "/docs", "hello.txt"),
        ("a/./b/../c", "/", "a/c"),
        ("/etc/passwd", "/", "etc/passwd"),  # chroot: absolute paths are rooted at the home
        ("%41.txt", "/", "%41.txt"),  # a literal percent in a name is fine
        ("/", "/", ""),
    ],
)
def test_resolve_inside_home(root: FileRoot, path: str, cwd: str, expected: str) -> None:
    home = root.home("demo")
    assert root.resolve("demo", path, cwd) == (home / expected if expected else home)


@pytest.mark.parametrize(
    ("path", "cwd"),
    [
        ("..", "/"),
        ("../../etc/passwd", "/"),
        ("/../etc/passwd", "/"),
        ("docs/../../x", "/"),
        ("../..", "/docs"),
        ("%2e%2e/%2e%2e/etc/passwd", "/"),
        ("%2E%2E%2Fetc", "/"),
        ("..%2fetc", "/"),
        ("file\0.txt", "/"),
        ("x", "/../.."),
    ],
)
def test_resolve_refuses_escapes(root: FileRoot, path: str, cwd: str) -> None:
    with pytest.raises(PathEscapeError):
        root.resolve("demo", path, cwd)


def test_symlink_out_of_home_is_refused(root: FileRoot, tmp_path: Path) -> None:
    home = root.home("demo")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (home / "escape").symlink_to(secret)
    (home / "escape_dir").symlink_to(tmp_path)
    (home / "inside").symlink_to(home / "hello.txt")
    assert PathEscapeError.__mro__[1] is PermissionError
    with pytest.raises(PathEscapeError):
        root.resolve("demo", "escape")
    with pytest.raises(PathEscapeError):
        root.resolve("demo", "escape_dir/secret.txt")
    assert root.resolve("demo", "inside") == home / "inside"
    # The link itself may be removed or inspected.
    assert root.resolve("demo", "escape", follow_symlinks=False) == home / "escape"
    with pytest.raises(PathEscapeError):
        root.resolve("demo", "escape_dir/secret.txt", follow_symlinks=False)


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", ".hidden", "nul\0"])
def test_user_names_that_are_not_a_segment_are_refused(root: FileRoot, name: str) -> None:
    with pytest.raises(PathEscapeError):
        root.home(name)


def test_write_permission(root: FileRoot) -> None:
    assert root.can_write("demo")
    assert not root.can_write("viewer")
    assert not root.can_write("nobody")
    assert not root.can_write(ANONYMOUS)


def test_anonymous_gets_public_dir_only_when_enabled(root: FileRoot, seed: Path) -> None:
    assert root.home(ANONYMOUS) == root.root / "public"
    off = FileRoot(root.root, root.users, root.journal, seed_dir=seed, anonymous=False)
    assert off.home(ANONYMOUS) == root.root / "home" / ANONYMOUS


def test_record_transfer_journals_a_file_event(root: FileRoot) -> None:
    root.record_transfer("ftp", "127.0.0.1:5000", "demo", "/up.bin", 42, "upload", complete=False)
    (event,) = root.journal.events(kind="file")
    assert event.server == "ftp"
    assert event.details == {"user": "demo", "path": "/up.bin", "bytes": 42, "direction": "upload", "complete": False}
    with pytest.raises(ValueError):
        root.record_transfer("ftp", "", "demo", "/x", 0, "sideways", complete=True)


def test_write_atomic_and_tree(root: FileRoot) -> None:
    home = root.home("demo")
    target = home / "new" / "data.bin"
    root.write_atomic(target, b"\x00\x01" * 10)
    assert target.read_bytes() == b"\x00\x01" * 10
    assert not [name for name in os.listdir(target.parent) if name.startswith(".upload-")]
    root.make_durable(target)
    tree = {entry.path: entry for entry in root.tree("demo")}
    assert tree["/new/data.bin"].size == 20
    assert tree["/new"].kind == "dir"
    assert tree["/hello.txt"].kind == "file"
    assert root.virtual("demo", target) == "/new/data.bin"
