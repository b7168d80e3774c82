"""The news spool across restarts and crashes, the admin API over it, and its config errors."""

from __future__ import annotations

import json
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from servers import registry
from servers.core import Core, load_config
from servers.core.config import ConfigError
from servers.nntp.store import DuplicateArticle, GroupConfig, NewsSpool, Posting, PostingRefused

GROUPS = [GroupConfig("local.test", "tests", True), GroupConfig("comp.lang.python", "python", True)]


def article(subject: str, groups: str = "local.test") -> bytes:
    return f"From: a@example.com\r\nNewsgroups: {groups}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n".encode()


def test_numbers_are_stable_across_restarts_and_samples_seed_once(tmp_path: Path) -> None:
    spool = NewsSpool(tmp_path, GROUPS)
    assert [e.number for e in spool.entries("local.test")] == [1, 2]  # the samples
    first = spool.post(article("one"))
    reopened = NewsSpool(tmp_path, GROUPS)  # a restart: no second seeding, same numbers
    assert [(e.number, e.message_id) for e in reopened.entries("local.test")][-1] == (3, first)
    reopened.post(article("two"))
    assert [e.subject for e in NewsSpool(tmp_path, GROUPS).entries("local.test")] == [
        "test",
        "another test",
        "one",
        "two",
    ]


def test_an_article_written_but_not_indexed_before_a_crash_is_indexed_on_open(tmp_path: Path) -> None:
    spool = NewsSpool(tmp_path, GROUPS, samples=False)
    spool.post(article("indexed"))
    # The crash window: the article file is durable, its index line was never appended
    # (and a torn half line was).
    (tmp_path / "local.test" / "2").write_bytes(article("orphan") + b"")
    with (tmp_path / "local.test" / "overview").open("a") as index:
        index.write('{"number": 2, "message_id"')
    recovered = NewsSpool(tmp_path, GROUPS, samples=False)
    assert [(e.number, e.subject) for e in recovered.entries("local.test")] == [(1, "indexed"), (2, "orphan")]
    assert recovered.post(article("after")) and recovered.entries("local.test")[-1].number == 3
    # The torn line was cut off, so the repair and the next post each got a whole line.
    lines = (tmp_path / "local.test" / "overview").read_text().splitlines()
    assert [json.loads(line)["number"] for line in lines] == [1, 2, 3]


def test_concurrent_posts_share_one_group_commit_and_stay_invisible_until_it(tmp_path: Path) -> None:
    spool = NewsSpool(tmp_path, GROUPS, samples=False)
    commits: list[int] = []
    append_index = spool._append_index
    spool._append_index = lambda group, entries: (commits.append(len(entries)), append_index(group, entries))[1]  # type: ignore[method-assign]
    pool = ThreadPoolExecutor(max_workers=8)
    spool._commit_lock.acquire()  # a commit in progress: the next posts write their files and queue
    try:
        futures = [pool.submit(spool.post, article(f"p{i}")) for i in range(8)]
        deadline = time.monotonic() + 30
        while len(spool._commit_queue) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the queue the posts join (bounded)
        assert len(spool._commit_queue) == 8
        assert spool.entries("local.test") == []  # written, not committed: not visible
    finally:
        spool._commit_lock.release()
    message_ids = [future.result(timeout=30) for future in futures]
    pool.shutdown()
    assert commits == [8]  # one directory and one index fsync for all eight
    entries = spool.entries("local.test")
    assert [e.number for e in entries] == list(range(1, 9)) and {e.message_id for e in entries} == set(message_ids)
    assert [e.number for e in NewsSpool(tmp_path, GROUPS, samples=False).entries("local.test")] == list(range(1, 9))


def test_post_many_keeps_each_posts_rules_and_commits_once(tmp_path: Path) -> None:
    spool = NewsSpool(tmp_path, GROUPS, samples=False)
    commits: list[int] = []
    append_index = spool._append_index
    spool._append_index = lambda group, entries: (commits.append(len(entries)), append_index(group, entries))[1]  # type: ignore[method-assign]
    named = article("named").replace(b"\r\n\r\n", b"\r\nMessage-ID: <once@example.com>\r\n\r\n", 1)
    outcomes = spool.post_many(
        [
            Posting(named),
            Posting(named.replace(b"named", b"again")),  # the same Message-ID, in the same batch
            Posting(b"Newsgroups: local.test\r\nSubject: no sender\r\n\r\nx\r\n"),
            Posting(article("unnamed"), require_message_id=True),
            Posting(article("last")),
        ]
    )
    assert outcomes[0] == "<once@example.com>" and isinstance(outcomes[4], str)
    assert isinstance(outcomes[1], DuplicateArticle) and str(outcomes[1]) == "duplicate article <once@example.com>"
    assert isinstance(outcomes[2], PostingRefused) and str(outcomes[2]) == "missing From header"
    assert isinstance(outcomes[3], PostingRefused) and str(outcomes[3]) == "missing Message-ID header"
    assert commits == [2]  # the two stored share one commit
    assert [(e.number, e.subject) for e in spool.entries("local.test")] == [(1, "named"), (2, "last")]
    assert not spool._in_flight
    assert spool.read("local.test", 2).endswith(b"\r\n\r\nbody of last\r\n")
    assert sorted(p.name for p in (tmp_path / "local.test").iterdir()) == ["1", "2", "created", "overview"]


def test_an_article_that_cannot_be_written_fails_alone_in_its_batch(tmp_path: Path) -> None:
    spool = NewsSpool(tmp_path, GROUPS, samples=False)
    (tmp_path / "local.test" / ".2.tmp").mkdir()  # number 2's temporary file cannot be opened
    outcomes = spool.post_many([Posting(article(f"p{n}")) for n in (1, 2, 3)])
    assert isinstance(outcomes[1], IsADirectoryError)
    assert isinstance(outcomes[0], str) and isinstance(outcomes[2], str)
    assert [(e.number, e.subject) for e in spool.entries("local.test")] == [(1, "p1"), (3, "p3")]  # 2: a gap
    spool.close()  # the writing threads end; a later batch starts them again
    assert all(isinstance(o, str) for o in spool.post_many([Posting(article("p4")), Posting(article("p5"))]))
    assert [e.number for e in NewsSpool(tmp_path, GROUPS, samples=False).entries("local.test")] == [1, 3, 4, 5]
    spool.close()


# Header lines as clients send them, odd ones included: folded, colonless, spaced names,
# Path and Xref of the client's, duplicates, empty values.
HEADER_LINES = st.sampled_from(
    [
        b"From: a@example.com",
        b"Subject: one",
        b"subject: two",
        b" folded on",
        b"\tfolded by tab",
        b"Path: elsewhere!origin",
        b"PATH",
        b"Path :x",
        b"Xref: forged x:1",
        b"Xref\t: forged",
        b"Date: Tue, 1 Dec 2026 10:00:00 +0000",
        b"Date:",
        b"Message-ID: <m@example.com>",
        b"References: <r@example.com>",
        b"References: <a@x>\tand tab",
        b"no colon at all",
        b"Odd Name: spaced",
        b"X-Other: value",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(HEADER_LINES, max_size=8))
def test_a_posts_index_entry_is_what_its_stored_article_says(tmp_path_factory: Any, lines: list[bytes]) -> None:
    # The entry comes from the client's headers plus what the spool added, without
    # parsing the stored article again; it must be what parsing it finds.
    spool = NewsSpool(tmp_path_factory.mktemp("spool"), GROUPS, samples=False)
    head = b"\r\n".join([b"Newsgroups: local.test", b"From: a@example.com", b"Subject: s", *lines])
    try:
        message_id = spool.post(head + b"\r\n\r\nbody\r\n.\r\n..x\r\n", arrived=1_700_000_000.0)
    except PostingRefused:  # a Message-ID folded into a malformed one
        reject()
    group, entry = spool.find(message_id)
    assert group == "local.test"
    assert entry == spool._entry_for(entry.number, spool.read(group, entry.number), entry.arrived)


def test_admin_api_lists_groups_articles_and_serves_one_raw(refservers_nntp: Any, refservers_admin: Any) -> None:
    spool = refservers_nntp.core.shared(NewsSpool)
    message_id = spool.post(article("via api"))
    api = f"{refservers_admin.url}/api/v1/news"
    groups = {g["name"]: g for g in requests.get(api, timeout=10).json()["groups"]}
    assert (groups["local.test"]["count"], groups["local.test"]["low"], groups["local.test"]["high"]) == (3, 1, 3)
    assert groups["comp.lang.python"]["posting"] is True and groups["comp.lang.python"]["high"] == 3
    listing = requests.get(f"{api}/local.test", timeout=10).json()
    last = listing["articles"][-1]
    assert (last["number"], last["message_id"], last["subject"], last["from"]) == (
        3,
        message_id,
        "via api",
        "a@example.com",
    )
    assert last["date"]
    raw = requests.get(f"{api}/local.test/3", timeout=10)
    assert raw.status_code == 200 and raw.headers["Content-Type"].startswith("message/news")
    assert raw.content == spool.read("local.test", 3) and raw.content.endswith(b"\r\n\r\nbody of via api\r\n")
    assert requests.get(f"{api}/no.such", timeout=10).status_code == 404
    assert requests.get(f"{api}/local.test/99", timeout=10).status_code == 404
    assert requests.get(f"{api}/local.test/x", timeout=10).status_code == 400


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["nntp.groups=../etc=escape"], "[nntp] groups: '../etc' is not a newsgroup name"),
        (["nntp.read_only_groups=alt.absent"], "[nntp] read_only_groups: 'alt.absent' is not in [nntp] groups"),
    ],
)
def test_bad_group_config_fails_at_start_with_one_line(tmp_path: Path, settings: list[str], message: str) -> None:
    config = load_config(
        registry.schema(), env={}, overrides=[f"core.data_dir={tmp_path}", "nntp.port=0", "nntp.tls_port=0", *settings]
    )
    core = Core(config)
    try:
        with pytest.raises(ConfigError) as problem:
            registry.server_class("nntp")(config["nntp"], core)
        assert str(problem.value).startswith(message) and "\n" not in str(problem.value)
    finally:
        core.stop_all()


def test_configs_nntp_toml_documents_every_key_with_its_default() -> None:
    text = (Path(__file__).parents[2] / "configs" / "nntp.toml").read_text()
    documented = {}
    for line in text.splitlines():
        body = line.removeprefix("# ")
        key, sep, rest = body.partition(" = ")
        if line.startswith("# ") and sep and key.isidentifier():
            documented[key] = rest.split("  #")[0].strip()
    options = registry.server_class("nntp").all_options()
    for option in options:
        if option.key == "groups":
            assert '# "comp.lang.python" = ' in text and '# "local.test" = ' in text
            continue
        assert option.key in documented, option.key
        value = documented[option.key]
        assert option.kind.from_toml(tomllib.loads(f"v = {value}")["v"]) == option.default, option.key
