"""Every relative link in README.md and docs/*.md leads somewhere, so the docs survive files moving.

The README is the front door and the reference lives in docs/: a page renamed, a folder moved or a
heading reworded would leave a link that 404s on GitHub without anyone noticing. This test reads
every Markdown link and image (`[text](target)`, `![alt](target)`, outside code) in those files and
checks that a relative target is a file or folder of the repository, and that a `#anchor` into a
Markdown file matches one of its headings under GitHub's slug rules (lowercase, spaces to `-`,
punctuation dropped, `-1`, `-2`, ... for repeated headings). Web links (`https:`, `mailto:`) are not
fetched. It also checks that every docs page can be reached from the README.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
_CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
# [text](target) or ![alt](target), with an optional "title"; the text may hold one level of brackets.
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_INLINE_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def _prose(markdown: str) -> str:
    """The text outside fenced code blocks and code spans (where brackets are not links)."""
    return _CODE_SPAN.sub("", _FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lowercase, punctuation dropped, spaces to '-'."""
    text = _INLINE_LINK.sub(r"\1", heading).replace("`", "").strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a Markdown text, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for match in _HEADING.finditer(_FENCE.sub("", markdown)):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(markdown: str) -> list[str]:
    return [match.group(1) for match in _LINK.finditer(_prose(markdown))]


def _is_web(target: str) -> bool:
    """https:, mailto: and other schemes: not files of this repository, not fetched."""
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) is not None


def broken_links(page: Path, root: Path) -> list[str]:
    """The links of one page that lead nowhere, each with the reason."""
    page, root = page.resolve(), root.resolve()
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if _is_web(target):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(root) or not resolved.exists():
            problems.append(f"{page.relative_to(root)}: {target} -> no such file")
            continue
        checkable = anchor and resolved.suffix == ".md"
        if checkable and anchor not in anchors(resolved.read_text(encoding="utf-8")):
            problems.append(f"{page.relative_to(root)}: {target} -> no heading #{anchor}")
    return problems


def test_every_relative_link_points_at_something_that_exists() -> None:
    problems = [problem for page in PAGES for problem in broken_links(page, ROOT)]
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    reached, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in reached or page.suffix != ".md" or not page.is_file():
            continue
        reached.add(page)
        for target in links(page.read_text(encoding="utf-8")):
            path_part = target.partition("#")[0]
            if path_part and not _is_web(path_part):
                todo.append((page.parent / path_part).resolve())
    unreached = [str(page.relative_to(ROOT)) for page in PAGES if page not in reached]
    assert not unreached, f"docs pages no link from README.md leads to: {unreached}"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("What happens when…", "what-happens-when"),
        ("The job spec: object metadata", "the-job-spec-object-metadata"),
        ("Locally: `batch-gateway local up`", "locally-batch-gateway-local-up"),
        ("1. Build", "1-build"),
        ("Input: a JSONL file of `BatchItem`s", "input-a-jsonl-file-of-batchitems"),
        ("Schedules, the reconciler, events and webhooks", "schedules-the-reconciler-events-and-webhooks"),
        ("`batch_gateway/` and [its layer](x.md)", "batch_gateway-and-its-layer"),
    ],
)
def test_anchors_follow_githubs_slug_rules(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_a_broken_link_or_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# A page\n\n## A heading\n\n## A heading\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/there.md#a-heading) [repeat](docs/there.md#a-heading-1) [self](#top) ![img](docs/gone.png)\n"
        "[gone](docs/missing.md) [bad anchor](docs/there.md#no-such) [web](https://example.com/x)\n"
        "`[in code](nowhere.md)`\n\n```\n[in a fence](nowhere.md)\n```\n\n# Top\n"
    )
    assert broken_links(page, tmp_path) == [
        "README.md: docs/gone.png -> no such file",
        "README.md: docs/missing.md -> no such file",
        "README.md: docs/there.md#no-such -> no heading #no-such",
    ]
