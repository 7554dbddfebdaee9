"""The reference tables of the docs list exactly what the code has: every rejection reason code in
``docs/contract.md`` and every metric the functions emit in ``docs/observability.md``.

Metric names are read from the code: the ``name`` of every ``add_metric``/``single_metric`` call under
``functions/``. A name held in a variable stands for the string keys of the dictionaries assigned in
the same function (the pattern ``for name, value in counts.items()``); an f-string stands for every
documented metric that starts with its fixed prefix, of which there must be at least one.
"""

from __future__ import annotations

import ast
from pathlib import Path

from telemetry_adapter.config import Settings
from telemetry_adapter.rejections import Reason
from tests.docs.markdown import code_spans, tables

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "contract.md"
OBSERVABILITY = ROOT / "docs" / "observability.md"
METRIC_CALLS = {"add_metric", "single_metric"}


def first_column(page: Path, header: str) -> list[str]:
    """Code spans of the first column of every table whose first header cell is ``header``."""
    return [
        span
        for table in tables(page)
        if table.header[:1] == (header,)
        for row in table.rows
        for span in code_spans(row[0])
    ]


def emitted_metrics() -> tuple[set[str], set[str]]:
    """(exact names, f-string prefixes) of the metrics the functions emit."""
    names: set[str] = set()
    prefixes: set[str] = set()
    for path in sorted((ROOT / "functions").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
            dictionary_keys = {
                key.value
                for node in ast.walk(function)
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                for key in node.value.keys
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            }
            for call in (node for node in ast.walk(function) if isinstance(node, ast.Call)):
                called = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
                if called not in METRIC_CALLS:
                    continue
                (name,) = [keyword.value for keyword in call.keywords if keyword.arg == "name"] or call.args[:1]
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    names.add(name.value)
                elif isinstance(name, ast.JoinedStr):
                    first = name.values[0]
                    assert isinstance(first, ast.Constant), f"{path}: an f-string metric name needs a fixed prefix"
                    prefixes.add(str(first.value))
                elif isinstance(name, ast.Name):
                    assert dictionary_keys, f"{path}:{call.lineno}: cannot tell which metric names {name.id} holds"
                    names |= dictionary_keys
                else:
                    raise AssertionError(f"{path}:{call.lineno}: cannot read this metric name")
    return names, prefixes


def test_every_reason_code_is_documented_and_nothing_else() -> None:
    documented = first_column(CONTRACT, "reason")
    assert sorted(documented) == sorted(reason.value for reason in Reason)
    assert len(documented) == len(set(documented))


def test_every_emitted_metric_is_documented() -> None:
    documented = set(first_column(OBSERVABILITY, "metric"))
    names, prefixes = emitted_metrics()
    assert names, "no metric found in the code: the way metrics are emitted changed; update this test"
    assert sorted(names - documented) == [], "add these metrics to docs/observability.md"
    for prefix in prefixes:
        assert any(metric.startswith(prefix) for metric in documented), f"document the {prefix}* metrics"


def test_every_documented_metric_is_emitted() -> None:
    names, prefixes = emitted_metrics()
    stale = [
        metric
        for metric in first_column(OBSERVABILITY, "metric")
        if metric not in names and not metric.startswith(tuple(prefixes))
    ]
    assert stale == [], "documented, but the code does not emit them"


def test_the_contract_states_the_string_limits_in_characters_as_the_code_counts_them() -> None:
    """``cmdl`` and ``user`` are limited in characters (up to 4 bytes each in UTF-8), not in bytes."""
    limits = Settings(stream_name="events").limits
    rows = [row for table in tables(CONTRACT) for row in table.rows if "events.new_process[]" in row[0]]
    assert len(rows) == 1
    rule = rows[0][1]
    assert f"at most {limits.max_cmdl_chars:,} characters" in rule
    assert f"at most {limits.max_string_chars:,} characters" in rule
    assert "KiB" not in rule
