"""``docs/configuration.md`` says what the code does: every setting, its default and its range.

The page's tables are the input. A table whose first column is ``variable`` lists environment
variables; one whose first column is ``key`` lists CDK context values. Each row names one or more
settings in code spans, then a default cell (a value in a code span, ``required``, or words for "no
fixed default") and a range cell (``low to high``, a list of values in code spans, or words).

Environment variables:

- every variable the functions' code names (an upper-case string constant anywhere under
  ``functions/``) has a row, and every row names a variable the code or a library reads;
- a numeric range is checked against each *reader* below that reads the variable: both bounds are
  accepted, one past either bound is refused with an error naming the variable, and setting the
  documented default changes nothing;
- ``required`` means a reader refuses to start without it (or the code indexes ``os.environ`` with it);
- a default in a code span for a variable read with ``.get(NAME, "default")`` is that literal.

CDK context values: every key of ``infra.settings.DEFAULTS`` and every key the app looks up has a row;
the documented default equals ``DEFAULTS``; a numeric range or a list of values is checked through
``load_settings`` as above. A value refused only by a rule that ties keys together (its message names
another key) still counts as within the key's own range.

A new setting needs a row; a setting read by a new kind of reader needs an entry in ``READERS``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cleanup.handler import CleanupSettings, retention_days
from migrate.handler import roles_from_env

from health.settings import HealthSettings
from infra.settings import DEFAULTS, STAGES_KEY, ContextError, load_settings
from local_stack.options import parse_options
from telemetry_adapter.config import ConfigurationError, Settings
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.observability import tracing_enabled
from tests.docs.markdown import Table, code_spans, tables

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"
FUNCTIONS = ROOT / "functions"
INFRA = (ROOT / "app.py", *sorted((ROOT / "infra").glob("*.py")))

_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_RANGE = re.compile(r"(-?[\d,]+(?:\.\d+)?) to (-?[\d,]+(?:\.\d+)?)")
# Variables that boto3 or Powertools read themselves: documented, but never named in our code.
LIBRARY_PREFIXES = ("AWS_ENDPOINT_URL", "POWERTOOLS_")
# Upper-case string constants under functions/ that are not environment variables.
NOT_ENVIRONMENT: frozenset[str] = frozenset({"AWS_IAM"})  # a value of HEALTH_URL_AUTH


@dataclass(frozen=True)
class Reader:
    """A function that reads settings from an environment mapping and raises ConfigurationError."""

    label: str
    base: Mapping[str, str]
    read: Callable[[dict[str, str]], object]


READERS = (
    Reader("processor settings", {"STREAM_NAME": "events"}, Settings.from_env),
    Reader("health settings", {}, HealthSettings.from_env),
    Reader("clean-up retention", {}, retention_days),
    Reader(
        "ledger connection through RDS Proxy",
        {"DB_HOST": "proxy.example.internal", "DB_NAME": "ledger", "DB_USER": "app", "AWS_REGION": "eu-west-1"},
        DatabaseSettings.from_env,
    ),
    Reader("tracing switch", {}, tracing_enabled),
    Reader("clean-up settings", {}, CleanupSettings.from_env),
    Reader(
        "migration's database users",
        {"APP_DB_USER": "app", "APP_SECRET_ARN": "arn:app"},
        lambda env: roles_from_env(env, lambda arn: "password"),
    ),
)


@dataclass(frozen=True)
class Row:
    """One documented setting."""

    name: str
    default: str
    range: str
    table: Table

    def __str__(self) -> str:
        return f"{self.name} (docs/configuration.md, table under '{self.table.section}')"


def documented(first_column: str) -> list[Row]:
    rows: list[Row] = []
    for table in tables(PAGE):
        if table.header[:1] != (first_column,):
            continue
        assert {"default", "range"} <= set(table.header), f"table under '{table.section}' needs default and range"
        default_at, range_at = table.header.index("default"), table.header.index("range")
        for cells in table.rows:
            rows.extend(Row(name, cells[default_at], cells[range_at], table) for name in code_spans(cells[0]))
    return rows


def documented_literal(cell: str) -> str | None:
    """The default written in a code span at the start of the cell, or None for "no fixed default"."""
    return code_spans(cell)[0] if cell.startswith("`") else None


def documented_range(cell: str) -> tuple[float, float] | None:
    match = _RANGE.fullmatch(cell.strip())
    if not match:
        return None
    low, high = (float(group.replace(",", "")) for group in match.groups())
    return low, high


def documented_choices(cell: str) -> list[str] | None:
    spans = code_spans(cell)
    return spans if spans and re.fullmatch(r"(`[^`]+`\s*,?\s*)+", cell.strip()) else None


def text(number: float) -> str:
    return str(int(number)) if number == int(number) else str(number)


def python_files(folder: Path) -> Iterator[Path]:
    yield from (path for path in sorted(folder.rglob("*.py")) if "__pycache__" not in path.parts)


@cache
def trees() -> tuple[tuple[Path, ast.Module], ...]:
    return tuple((path, ast.parse(path.read_text(encoding="utf-8"))) for path in python_files(FUNCTIONS))


def variables_named_in_functions() -> set[str]:
    names = set()
    for _, tree in trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ENV_NAME.fullmatch(node.value):
                names.add(node.value)
    return names - NOT_ENVIRONMENT


def literal_defaults() -> dict[str, set[str]]:
    """``NAME -> {"default"}`` for every ``<mapping>.get("NAME", "default")`` under functions/."""
    found: dict[str, set[str]] = {}
    for _, tree in trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
                constants = [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
                strings = [value for value in constants if isinstance(value, str)]
                if len(node.args) == 2 and len(strings) == 2 and strings[1]:  # "" means unset: defaulted later
                    found.setdefault(strings[0], set()).add(strings[1])
    return found


def indexed_in_environ() -> set[str]:
    """Names the code reads as ``os.environ["NAME"]``: missing, they stop the function."""
    found = set()
    for _, tree in trees():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "environ"
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
            ):
                found.add(node.slice.value)
    return found


def outcome(reader: Reader, env: dict[str, str]) -> tuple[str, object]:
    """What a reader makes of ``env``: ("ok", settings) or ("refused", message)."""
    try:
        return "ok", reader.read(env)
    except ConfigurationError as error:
        return "refused", str(error)


def with_value(reader: Reader, name: str, value: str) -> tuple[str, object]:
    return outcome(reader, {**reader.base, name: value})


def readers_of(name: str, low: float, high: float) -> list[Reader]:
    """The readers whose answer depends on ``name``."""
    found = []
    for reader in READERS:
        unset = outcome(reader, dict(reader.base))
        probes = [with_value(reader, name, text(value)) for value in (low, high, high + 1, low - 1)]
        if any(probe != unset for probe in probes):
            found.append(reader)
    return found


# --- environment variables ---------------------------------------------------------------------


def test_the_page_has_variable_and_context_tables() -> None:
    assert len(documented("variable")) >= 30
    assert len(documented("key")) >= len(DEFAULTS)


def test_every_variable_the_functions_read_is_documented() -> None:
    rows = {row.name for row in documented("variable")}
    missing = sorted(variables_named_in_functions() - rows)
    assert missing == [], f"add a row to docs/configuration.md for: {missing}"


def test_every_documented_variable_is_read_by_the_code_or_a_library() -> None:
    read = variables_named_in_functions()
    stale = sorted(
        row.name for row in documented("variable") if row.name not in read and not row.name.startswith(LIBRARY_PREFIXES)
    )
    assert stale == [], f"documented but read by nothing: {stale}"


def numeric_variables() -> list[Row]:
    return [row for row in documented("variable") if documented_range(row.range)]


@pytest.mark.parametrize("row", numeric_variables(), ids=str)
def test_numeric_variable_range_and_default_match_the_code(row: Row) -> None:
    bounds = documented_range(row.range)
    assert bounds is not None
    low, high = bounds
    readers = readers_of(row.name, low, high)
    assert readers, f"no reader in READERS reads {row.name}; add the function that reads it"
    default = documented_literal(row.default)
    for reader in readers:
        unset = outcome(reader, dict(reader.base))
        assert unset[0] == "ok", f"{reader.label} refuses its base environment: {unset[1]}"
        for inside in (low, high):
            assert with_value(reader, row.name, text(inside))[0] == "ok", f"{reader.label} refuses {row.name}={inside}"
        for outside in (low - 1, high + 1):
            verdict, message = with_value(reader, row.name, text(outside))
            assert verdict == "refused", f"{reader.label} accepts {row.name}={text(outside)}, outside {row.range}"
            assert row.name in str(message)
        assert default is not None, f"{row}: write the default in a code span"
        assert with_value(reader, row.name, default) == unset, f"{reader.label}: {row.name}'s default is not {default}"


@pytest.mark.parametrize("row", [row for row in documented("variable") if row.default == "required"], ids=str)
def test_a_required_variable_is_required(row: Row) -> None:
    refused = [
        reader.label
        for reader in READERS
        if (result := outcome(reader, {k: v for k, v in reader.base.items() if k != row.name}))[0] == "refused"
        and row.name in str(result[1])
    ]
    assert refused or row.name in indexed_in_environ(), f"nothing refuses to start without {row.name}"


def test_literal_defaults_match_the_code() -> None:
    code = literal_defaults()
    wrong = []
    for row in documented("variable"):
        default = documented_literal(row.default)
        if row.name in code and default is not None and code[row.name] != {default}:
            wrong.append(f"{row}: documented {default!r}, code {sorted(code[row.name])}")
    assert wrong == []


def test_the_readers_are_the_code_paths_that_read_settings() -> None:
    """Each reader really reads its variables from the mapping it is given, not from os.environ."""
    assert with_value(READERS[0], "MAX_BODY_BYTES", "63")[0] == "refused"
    assert with_value(READERS[1], "HEALTH_CHECK_TIMEOUT_MS", "49")[0] == "refused"
    assert with_value(READERS[2], "LEDGER_RETENTION_DAYS", "0")[0] == "refused"
    assert with_value(READERS[3], "DB_PORT", "0")[0] == "refused"
    assert outcome(READERS[4], {"LAMBDA_TASK_ROOT": "/var/task"}) == ("ok", True)
    assert with_value(READERS[5], "CLEANUP_CHUNK_ROWS", "99")[0] == "refused"


# --- CDK context values ------------------------------------------------------------------------


def keys_looked_up_by_the_app() -> set[str]:
    found = {STAGES_KEY}  # looked up by load_settings itself, beside the keys of DEFAULTS
    for path in INFRA:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("try_get_context", "get_context")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def context_value(span: str) -> Any:
    if span in ("true", "false"):
        return span == "true"
    number = span.replace(",", "")
    if re.fullmatch(r"-?\d+", number):
        return int(number)
    if re.fullmatch(r"-?\d+\.\d+", number):
        return float(number)
    return span


def refusal(context: dict[str, Any]) -> str | None:
    try:
        load_settings(context)
    except ContextError as error:
        return str(error)
    return None


def names_another_key(message: str, key: str) -> bool:
    others = (set(DEFAULTS) | keys_looked_up_by_the_app()) - {key}
    return any(re.search(rf"\b{re.escape(other)}\b", message) for other in others)


def test_every_context_key_is_documented_once() -> None:
    names = [row.name for row in documented("key")]
    expected = set(DEFAULTS) | keys_looked_up_by_the_app()
    assert sorted(expected - set(names)) == [], "add a row to docs/configuration.md, CDK context values"
    assert sorted(set(names) - expected) == [], "documented but not read by the CDK app"
    assert sorted(name for name in set(names) if names.count(name) > 1) == []


@pytest.mark.parametrize("row", documented("key"), ids=str)
def test_context_default_matches_the_code(row: Row) -> None:
    literal = documented_literal(row.default)
    expected = DEFAULTS.get(row.name)
    if literal is None:
        assert expected is None, f"{row}: the default is {expected!r}; write it in a code span"
    else:
        assert context_value(literal) == expected


def test_the_documented_defaults_deploy() -> None:
    assert refusal({}) is None


@pytest.mark.parametrize("row", [row for row in documented("key") if row.name in DEFAULTS], ids=str)
def test_context_range_matches_the_code(row: Row) -> None:
    bounds, choices = documented_range(row.range), documented_choices(row.range)
    if bounds is not None:
        low, high = bounds
        for inside in (low, high):
            message = refusal({row.name: text(inside)})
            assert message is None or names_another_key(message, row.name), f"{row.name}={text(inside)}: {message}"
        for outside in (low - 1, high + 1):
            message = refusal({row.name: text(outside)})
            assert message is not None, f"{row.name}={text(outside)} is accepted, outside {row.range}"
            assert row.name in message
            assert not names_another_key(message, row.name), f"{row.name}={text(outside)} refused only by: {message}"
    elif choices is not None:
        for choice in choices:
            message = refusal({row.name: choice})
            assert message is None or names_another_key(message, row.name), f"{row.name}={choice}: {message}"
        message = refusal({row.name: "not-one-of-them"})
        assert message is not None
        assert row.name in message
    else:
        assert not re.search(r"\d", row.range), f"{row}: write a numeric range as 'low to high'"


def test_the_derived_receive_counts_the_docs_quote_are_the_codes() -> None:
    # The default maxReceiveCount is derived, not a literal the tables above can check: the pages quote
    # what the CDK app and make run derive with their defaults.
    pages = {
        "configuration.md": load_settings({}).max_receive_count,
        "local-development.md": parse_options([]).receives,
    }
    for page, receives in pages.items():
        quoted = re.findall(r"\((\d+) with the defaults\)", (ROOT / "docs" / page).read_text())
        assert quoted == [str(receives)], f"docs/{page} quotes {quoted} receives; the code derives {receives}"
