"""The README stays a short front page, every page of docs/ is reachable from it, and no link or picture is broken."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.DOTALL)
# [text](target "title") and ![alt](target); the text may hold one level of brackets
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
HTML = re.compile(r"<(?:img|a)\s[^>]*?(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where brackets are code, not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links_in(text: str) -> list[str]:
    text = prose(text)
    return [m.group(1) for pattern in (INLINE, REFERENCE, HTML) for m in pattern.finditer(text)]


def links(path: Path) -> list[str]:
    return links_in(path.read_text(encoding="utf-8"))


def local(target: str) -> bool:
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) and not target.startswith("//")


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    found, seen = set(), {}
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    found.update(re.findall(r"<a\s[^>]*?(?:id|name)=\"([^\"]+)\"", path.read_text(encoding="utf-8")))
    return found


def test_the_readme_is_a_front_page_of_at_most_250_lines():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail to a page of docs/ and link it"


def test_every_page_of_docs_is_linked_from_the_readme():
    linked = {(README.parent / t.split("#")[0]).resolve() for t in links(README) if local(t) and t.split("#")[0]}
    unlinked = [p.relative_to(ROOT).as_posix() for p in PAGES if p.resolve() not in linked]
    assert not unlinked, f"pages of docs/ the README does not link: {unlinked}"


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_picture_resolves(page):
    broken = []
    for target in filter(local, links(page)):
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor.lower() not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor in {resolved.relative_to(ROOT).as_posix()}")
    assert not broken, f"{page.relative_to(ROOT).as_posix()}: " + "; ".join(broken)


def test_the_link_reader_finds_links_and_pictures_but_not_code():
    text = ('See [a](docs/a.md#x "title"), ![pic](docs/p.png) and [b [c]](b.md).\n'
            "`[not](code.md)`\n```\n[not](fenced.md)\n```\n[ref]: docs/r.md\n")
    assert sorted(links_in(text)) == sorted(["docs/a.md#x", "docs/p.png", "b.md", "docs/r.md"])
    assert not local("https://example.com/a.md") and local("docs/a.md") and local("#x")
