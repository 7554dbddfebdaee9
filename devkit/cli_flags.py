"""Argument types for the command-line tools: each flag's range is checked when the flags are parsed.

argparse turns a ``ValueError`` in a type function into ``invalid <function name> value``, which
names our code instead of the mistake. These types raise ``ArgumentTypeError`` with a sentence a
person can act on (``argument --devices: expected a whole number from 1 to 10,000, got '0'``), and
refuse ``nan`` and ``inf``, which compare false with every bound and would slip through.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


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
    return parse


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
    return parse


def rate() -> Callable[[str], float]:
    """A share between 0 and 1 (``0.05`` is 5 %)."""
    return number(0.0, 1.0, note=" (a share: 0.05 is 5 %)")


def port() -> Callable[[str], int]:
    """A TCP port; 0 asks for any free one."""
    return integer(0, 65_535, note=" (0 = any free port)")
