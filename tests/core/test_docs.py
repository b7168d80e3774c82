"""The docs site's wiring, checked without mkdocs: every page in docs/ is in mkdocs.yml's nav,
every nav entry exists, and every relative link between docs pages, and from README.md into
docs/, lands on a file and (for `#anchor`) on a heading of it.

`make docs` runs `mkdocs build --strict`, which checks the same and more; this test keeps the
cheap part in `make test`, where mkdocs is not installed. Anchors follow Python-Markdown's toc
slugs (what mkdocs links to), which match GitHub's for the plain headings used here.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# A nav entry is `- Title: page.md` or `- page.md`; pages are plain names under docs/.
NAV_PAGE = re.compile(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w./-]+\.md)\s*$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target); the text may hold inline code, which is stripped first.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def nav_pages() -> list[str]:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:", 1)[1]
    return NAV_PAGE.findall(nav)


def docs_pages() -> list[str]:
    return sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))


def prose(markdown: str) -> str:
    """The text links can live in: fenced code blocks and inline code removed."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """Python-Markdown toc's default slugify (mkdocs' anchors): the heading's text, NFKD, ASCII,
    lower case, anything but word characters, spaces and hyphens dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8")))}


def relative_links(page: Path) -> list[str]:
    found = LINK.findall(prose(page.read_text(encoding="utf-8")))
    return [t for t in found if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("/")]


def broken_links(page: Path, must_stay_in: Path | None) -> list[str]:
    """Links of `page` that land on no file, outside `must_stay_in`, or on no heading there."""
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if must_stay_in is not None and not dest.is_relative_to(must_stay_in):
            broken.append(f"{target}: outside {must_stay_in.name}/ (mkdocs cannot link there)")
        elif not dest.is_file():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    nav = nav_pages()
    assert "index.md" in nav, "mkdocs.yml: docs/index.md is the landing page"
    assert sorted(set(nav)) == sorted(nav), f"mkdocs.yml: a page is listed twice: {nav}"
    assert sorted(set(docs_pages()) - set(nav)) == [], "docs pages missing from mkdocs.yml's nav"
    assert sorted(set(nav) - set(docs_pages())) == [], "mkdocs.yml's nav names pages docs/ lacks"


@pytest.mark.parametrize("page", docs_pages())
def test_links_between_docs_pages_resolve(page: str) -> None:
    assert broken_links(DOCS / page, must_stay_in=DOCS) == []


def test_links_from_readme_resolve() -> None:
    readme = ROOT / "README.md"
    assert broken_links(readme, must_stay_in=None) == []
    into_docs = [t for t in relative_links(readme) if t.startswith("docs/")]
    assert into_docs, "README.md links into docs/"


def test_the_checks_catch_what_they_claim(tmp_path: Path) -> None:
    """The link checker itself: a missing file, a missing heading and a way out of docs/ are
    reported; links inside code, external URLs and good anchors are not."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "b.md").write_text("# B page\n\n## The `x` option (port 1)\n", encoding="utf-8")
    (tmp_path / "outside.md").write_text("# Out\n", encoding="utf-8")
    page = docs / "a.md"
    page.write_text(
        "[ok](b.md) [ok](b.md#the-x-option-port-1) [ok](#a) [web](https://example.test/x.md)\n"
        "`[code](nope.md)`\n```\n[fenced](nope.md)\n```\n# A\n"
        "[gone](nope.md) [bad anchor](b.md#nope) [escape](../outside.md)\n",
        encoding="utf-8",
    )
    assert broken_links(page, must_stay_in=docs) == [
        "nope.md: no such file",
        "b.md#nope: no heading #nope in b.md",
        "../outside.md: outside docs/ (mkdocs cannot link there)",
    ]
