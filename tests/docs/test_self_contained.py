"""Nothing in the repository refers to anything a person who clones it does not have.

Every text file the repository tracks (code, comments, docs, Makefile, infrastructure, tests) is
checked for:

- a relative path that climbs out of the repository (``../`` beyond its root), or an absolute path of a
  particular machine (``/work/...``, ``/Users/...``, ``file://``);
- a reference to an internal specification or to one of its numbered sections, or to an issue, ticket
  or pull request number;
- a reference to a documentation file or anchor that does not exist: ``README.md#...``,
  ``docs/<page>.md#...`` and the links of every Markdown file, and "guarantee N" citations, which must
  name a guarantee of ``docs/contract.md``.

This file holds examples of what each check catches, so it is the one file the checks skip.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.docs.markdown import anchors, lines_outside_code

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "contract.md"
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".whl", ".gz", ".zip", ".pdf"}

_UP = re.compile(r"(?:\.\./)+[\w./-]*")
_MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:work|workspace|Users|root|mnt)/[\w.-]+|\bfile:///|\b[A-Z]:\\Users\\")
_SPEC_REFERENCE = re.compile(r"\bSPEC\b|\b(?i:spec)(?:ification)?\s*(?:section|§|\d)|\bproduct (?i:spec)ification\b")
_NUMBERED_SECTION = re.compile(r"(?i)\bsection\s+\d+")
_ISSUE = re.compile(r"(?i)\b(?:issue|ticket|bug|pull request|PR|GH)[\s-]*#?\d+\b|(?<![\w&/#\\])#\d+\b")
_DOC_REFERENCE = re.compile(r"(?<![\w/.-])(README\.md|CHANGELOG\.md|docs/[\w/.-]+?\.md)(?:#([\w-]+))?")
_MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
_GUARANTEE = re.compile(r"(?i)\bguarantees?\s+(\d+(?:\s*(?:,|and|or)\s*\d+)*)")


@cache
def repository_files() -> tuple[Path, ...]:
    """The text files git tracks (and new files not ignored), as a fresh clone would have them."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.fail(f"these checks list the repository's files with git; install git or run in a clone ({error})")
    files = []
    for name in sorted(filter(None, listing.split("\0"))):
        path = ROOT / name
        if path.suffix.lower() in BINARY_SUFFIXES or not path.is_file() or path == Path(__file__).resolve():
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        files.append(path)
    return tuple(files)


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    yield from enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)


def where(path: Path, number: int, line: str) -> str:
    return f"{path.relative_to(ROOT)}:{number}: {line.strip()[:160]}"


def escapes_repository(path: Path, reference: str) -> bool:
    """Whether ``reference``, read relative to the file's folder, points outside the repository."""
    target = (path.parent / reference).resolve()
    return not target.is_relative_to(ROOT)


def test_the_checks_see_the_whole_repository() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in repository_files()}
    expected = {"README.md", "Makefile", "docs/contract.md", "infra/monitoring.py", "functions/processor/handler.py"}
    assert expected <= names


def test_no_path_leaves_the_repository() -> None:
    offenders = []
    for path in repository_files():
        for number, line in numbered_lines(path):
            if any(escapes_repository(path, match) for match in _UP.findall(line)) or _MACHINE_PATH.search(line):
                offenders.append(where(path, number, line))
    assert offenders == []


def test_no_reference_to_a_specification_or_its_sections() -> None:
    offenders = []
    for path in repository_files():
        for number, line in numbered_lines(path):
            numbered = _NUMBERED_SECTION.search(line) and not re.search(r"\b(?:RFC|PEP)\s*\d", line)
            if _SPEC_REFERENCE.search(line) or numbered:
                offenders.append(where(path, number, line))
    assert offenders == []


def test_no_issue_or_pull_request_numbers() -> None:
    offenders = [
        where(path, number, line)
        for path in repository_files()
        for number, line in numbered_lines(path)
        if _ISSUE.search(line)
    ]
    assert offenders == []


def test_references_to_documentation_files_and_anchors_exist() -> None:
    offenders = []
    for path in repository_files():
        for number, line in numbered_lines(path):
            for name, anchor in _DOC_REFERENCE.findall(line):
                target = ROOT / name
                if not target.is_file() or (anchor and anchor not in anchors(target)):
                    offenders.append(where(path, number, line))
    assert offenders == []


def test_markdown_links_resolve_inside_the_repository() -> None:
    offenders = []
    for path in repository_files():
        if path.suffix != ".md":
            continue
        for number, line in lines_outside_code(path):
            for link in _MARKDOWN_LINK.findall(line):
                if re.match(r"[a-z][a-z0-9+.-]*:", link):  # https:, mailto: ...
                    continue
                file_part, _, anchor = link.partition("#")
                target = (path.parent / file_part).resolve() if file_part else path
                broken = (
                    not target.is_relative_to(ROOT)
                    or not target.exists()
                    or (anchor and target.suffix == ".md" and anchor not in anchors(target))
                )
                if broken:
                    offenders.append(where(path, number, f"{link}  <-  {line}"))
    assert offenders == []


def test_guarantee_citations_name_a_documented_guarantee() -> None:
    documented = {anchor for anchor in anchors(CONTRACT) if re.fullmatch(r"guarantee-\d+", anchor)}
    assert documented == {f"guarantee-{n}" for n in range(1, 8)}
    offenders = []
    for path in repository_files():
        for number, line in numbered_lines(path):
            for group in _GUARANTEE.findall(line):
                cited = {f"guarantee-{n}" for n in re.findall(r"\d+", group)}
                if not cited <= documented:
                    offenders.append(where(path, number, line))
    assert offenders == []


# The samples below are assembled from parts, so that the repository itself holds no such reference.
_SHARED = "../" + "shared/notes.md"


@pytest.mark.parametrize(
    ("pattern", "line"),
    [
        (_UP, f"see {_SHARED}"),
        (_MACHINE_PATH, "copied from /work/main/README.md"),
        (_SPEC_REFERENCE, "as " + "SP" + "EC section 7 requires"),
        (_NUMBERED_SECTION, "described in section 5"),
        (_ISSUE, "fixed in " + "iss" + "ue 3"),
        (_ISSUE, "see #12"),
        (_DOC_REFERENCE, "Runbook: README.md#deadletterqueuenotempty"),
        (_GUARANTEE, "holds guarantee 9"),
    ],
)
def test_each_pattern_catches_what_it_is_for(pattern: re.Pattern[str], line: str) -> None:
    assert pattern.search(line)
    assert not escapes_repository(ROOT / "docs" / "index.md", "../README.md")
    assert escapes_repository(ROOT / "README.md", _SHARED)
