"""Argument types for the command-line tools: each flag's range is checked when the flags are parsed.

argparse turns a ``ValueError`` in a type function into ``invalid <function name> value``, which
names our code instead of the mistake. These types raise ``ArgumentTypeError`` with a sentence a
person can act on (``argument --devices: expected a whole number from 1 to 10,000, got '0'``), and
refuse ``nan`` and ``inf``, which compare false with every bound and would slip through.

Each type also carries its range as text (:data:`RANGE`), so :class:`HelpFormatter`, the tools' one
help formatter, shows every flag's range once and its default once: ``(1 to 10,000; default: 20)``.
A default a value cannot say (``None`` meaning "a new seed per run") is said in words at the end of
the flag's help, ``[default: new per run]``, and shown in the same place.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar

RANGE = "range_text"
"""The attribute of an argument type that holds its range as people read it (``1 to 10,000``)."""
_WORDED_DEFAULT = re.compile(r"\s*\[default: ([^\]]*)\]\s*$")
Parse = TypeVar("Parse", bound=Callable[..., Any])


def with_range(parse: Parse, text: str) -> Parse:
    """``parse`` with its range attached for the help (``text``: ``1 to 10,000``, ``any whole number``)."""
    setattr(parse, RANGE, text)
    return parse


class _RangesAndDefaults(argparse.HelpFormatter):
    """Each flag's help followed by its range and its default, each said once, in one parenthesis.

    No default is shown for a switch, for a default of None (unless said in words as ``[default: ...]``),
    or for a help text that places it itself with ``%(default)s``.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or not action.option_strings:
            return text
        worded = _WORDED_DEFAULT.search(text)
        if worded:
            text = text[: worded.start()]
        parts = [str(span)] if (span := getattr(action.type, RANGE, None)) else []
        if worded:
            parts.append(f"default: {worded.group(1).replace('%', '%%')}")
        elif action.nargs != 0 and action.default not in (None, argparse.SUPPRESS):
            parts.append("default: %(default)s")
        return f"{text} ({'; '.join(parts)})" if parts else text


class HelpFormatter(_RangesAndDefaults):
    """The tools' help: descriptions wrapped, each flag's range and default said once."""


class RawDescriptionHelpFormatter(_RangesAndDefaults, argparse.RawDescriptionHelpFormatter):
    """The same, with the description printed as written (a module docstring)."""


def _shown(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {_shown(minimum)} to {_shown(maximum)}"
    if minimum is not None:
        return f" of at least {_shown(minimum)}"
    if maximum is not None:
        return f" of at most {_shown(maximum)}"
    return ""


def integer(minimum: int | None = None, maximum: int | None = None, *, note: str = "") -> Callable[[str], int]:
    """A whole number within ``[minimum, maximum]`` (either bound may be open)."""
    expected = f"expected a whole number{_bounds(minimum, maximum)}{note}"

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}")
        return value

    parse.__name__ = "whole number"
    return with_range(parse, _span(minimum, maximum, "any whole number"))


def number(minimum: float | None = None, maximum: float | None = None, *, note: str = "") -> Callable[[str], float]:
    """A finite decimal number within ``[minimum, maximum]`` (either bound may be open)."""
    expected = f"expected a number{_bounds(minimum, maximum)}{note}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None
        outside = (minimum is not None and value < minimum) or (maximum is not None and value > maximum)
        if not math.isfinite(value) or outside:
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}")
        return value

    parse.__name__ = "number"
    return with_range(parse, _span(minimum, maximum, "any number"))


def _span(minimum: float | None, maximum: float | None, unbounded: str) -> str:
    """The range as the help shows it."""
    bounds = _bounds(minimum, maximum).strip()
    return bounds.removeprefix("from ").removeprefix("of ") if bounds else unbounded


def rate() -> Callable[[str], float]:
    """A share between 0 and 1 (``0.05`` is 5 %)."""
    return number(0.0, 1.0, note=" (a share: 0.05 is 5 %)")


def port() -> Callable[[str], int]:
    """A TCP port; 0 asks for any free one."""
    return integer(0, 65_535, note=" (0 = any free port)")
