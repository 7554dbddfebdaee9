"""The Node.js the docs recommend is one the pinned jsii (the runtime aws-cdk-lib needs) still supports.

jsii carries its own table of Node.js releases and their end of life, and prints a banner on every
start under a release past it. The docs recommend one of the two newest releases of that table, and
say what happens on an older one; a jsii upgrade that moves the table on fails this test, so the
recommendation moves with it.
"""

from __future__ import annotations

import re
from pathlib import Path

import jsii

from tests.docs.markdown import tables

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = Path(jsii.__file__).parent / "_embedded" / "jsii" / "bin__jsii-runtime.js"
_RELEASE = re.compile(r'new NodeRelease\((\d+),\{endOfLife:new Date\("(\d{4}-\d{2}-\d{2})"\)')


def supported_majors() -> list[int]:
    """jsii's Node.js releases, newest end of life last."""
    releases = sorted((end, int(major)) for major, end in _RELEASE.findall(RUNTIME.read_text(encoding="utf-8")))
    assert len(releases) >= 5, f"no NodeRelease table in {RUNTIME}: read the jsii runtime again"
    return [major for _, major in releases]


def node_cell(page: Path) -> str:
    """The Node.js row of the page's requirements table (its first two cells)."""
    for table in tables(page):
        for row in table.rows:
            if "node.js" in row[0].lower():
                return " ".join(row[:2])
    raise AssertionError(f"{page.name} has no Node.js row")


def test_the_docs_recommend_a_node_release_jsii_supports() -> None:
    newest_two = supported_majors()[-2:]
    for page in (ROOT / "README.md", ROOT / "docs" / "deploy.md"):
        cell = node_cell(page)
        first_number = re.search(r"\d+", cell)
        assert first_number, f"{page.name}: the Node.js row names no version"
        recommended = int(first_number.group())
        assert recommended in newest_two, f"{page.name}: recommends Node.js {recommended}, jsii's are {newest_two}"
