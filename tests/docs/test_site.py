"""The documentation site builds with ``--strict``: a broken link or anchor, or a page missing from the
navigation, fails the build and this test."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from tests.docs.site import DOCS, ROOT, build_site

PAGES = (
    "index.md",
    "local-development.md",
    "contract.md",
    "configuration.md",
    "deploy.md",
    "runbook.md",
    "operations.md",
    "observability.md",
    "design.md",
    "reliability.md",
    "benchmarks.md",
)


@pytest.fixture(scope="module")
def mkdocs_installed() -> None:
    missing = [name for name in ("mkdocs", "material") if importlib.util.find_spec(name) is None]
    assert not missing, f"install the documentation tools: pip install -r requirements-dev.txt (missing {missing})"


def test_the_site_builds_strictly(mkdocs_installed: None, tmp_path: Path) -> None:
    result = build_site(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr + result.stdout
    built = {path.relative_to(tmp_path / "site").as_posix() for path in (tmp_path / "site").rglob("index.html")}
    expected = {"index.html"} | {f"{page.removesuffix('.md')}/index.html" for page in PAGES if page != "index.md"}
    assert expected <= built


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        ("[gone](runbook.md#no-such-alarm)", "does not contain an anchor '#no-such-alarm'"),
        ("[gone](no-such-page.md)", "no-such-page.md"),
        ("[gone](#no-such-heading)", "there is no such anchor on this page"),
    ],
)
def test_a_broken_link_fails_the_build(mkdocs_installed: None, tmp_path: Path, broken: str, complaint: str) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "index.md"
    page.write_text(page.read_text() + f"\n{broken}\n")
    result = build_site(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert complaint in result.stderr + result.stdout


def test_every_page_is_in_the_navigation() -> None:
    on_disk = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    navigation = (ROOT / "mkdocs.yml").read_text()
    assert set(PAGES) <= on_disk
    assert [page for page in sorted(on_disk) if f": {page}" not in navigation] == []


def test_the_home_page_links_every_page_of_the_navigation() -> None:
    """docs/index.md is the site's table of pages: a page in the navigation but not in it is hidden
    from a reader who starts there."""
    navigation = re.findall(r":\s*([\w-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.MULTILINE)
    home = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w-]+\.md)(?:#[\w-]*)?\)", home))
    assert set(navigation) - {"index.md"} <= set(PAGES)
    assert [page for page in navigation if page != "index.md" and page not in linked] == []
