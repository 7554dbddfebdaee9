"""Reading the repository's Markdown the way the documentation site does: heading anchors and tables.

Anchors use Python-Markdown's own ``slugify`` (the one MkDocs' table of contents uses), so an anchor the
tests accept is one the built site has. Headings inside fenced code blocks are not headings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from markdown.extensions.toc import slugify

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_EXPLICIT_ID = re.compile(r"\{\s*#([\w-]+)[^}]*\}\s*$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True)
class Heading:
    """One heading: its level, its visible text and its anchor."""

    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Table:
    """A Markdown table: the heading it sits under, its header cells (lower case) and its rows."""

    section: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    line: int


def lines_outside_code(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every line not inside a fenced code block."""
    result = []
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            result.append((number, line))
    return result


@cache
def headings(path: Path) -> tuple[Heading, ...]:
    """Every heading of a Markdown file with the anchor MkDocs gives it (duplicates get ``_1``, ...)."""
    seen: dict[str, int] = {}
    found = []
    for _, line in lines_outside_code(path):
        match = _HEADING.match(line)
        if not match:
            continue
        level, text = len(match.group(1)), match.group(2)
        explicit = _EXPLICIT_ID.search(text)
        text = _EXPLICIT_ID.sub("", text).strip()
        visible = _LINK.sub(r"\1", text).replace("`", "").replace("**", "")
        anchor = explicit.group(1) if explicit else slugify(visible, "-")
        if not explicit and anchor in seen:
            seen[anchor] += 1
            anchor = f"{anchor}_{seen[anchor]}"
        else:
            seen.setdefault(anchor, 0)
        found.append(Heading(level, visible, anchor))
    return tuple(found)


def anchors(path: Path) -> frozenset[str]:
    """The anchors a link may point at in ``path``."""
    return frozenset(heading.anchor for heading in headings(path))


def _cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line.strip().strip("|").split("|"))


def tables(path: Path) -> list[Table]:
    """Every table of a Markdown file with the text of the nearest heading above it."""
    found: list[Table] = []
    section = ""
    block: list[tuple[int, str]] = []

    def close() -> None:
        if len(block) >= 2 and set(block[1][1].replace("|", "").strip()) <= set("-: "):
            header = tuple(cell.lower() for cell in _cells(block[0][1]))
            rows = tuple(_cells(text) for _, text in block[2:])
            found.append(Table(section, header, rows, block[0][0]))
        block.clear()

    for number, line in lines_outside_code(path):
        if line.lstrip().startswith("|"):
            block.append((number, line))
            continue
        close()
        match = _HEADING.match(line)
        if match:
            section = _EXPLICIT_ID.sub("", match.group(2)).strip()
    close()
    return found


def code_spans(cell: str) -> list[str]:
    """The text of every inline code span in a table cell."""
    return re.findall(r"`([^`]+)`", cell)
