"""Fuzzing the decoder by mutation: valid submissions, one mutation each, and hostile bodies at scale.

Complements ``tests/unit/test_decoder_properties.py`` (documents generated from scratch): here every
input starts as a real fleet submission, so the mutations reach deep into validation. Properties: only
``Rejected`` escapes; a mutation that must invalidate does, with the right reason; and the cost of a
hostile body grows linearly with its size, in time and in memory (ratios inside one run, never
absolute timings).
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit import fleet
from telemetry_adapter.config import MIB, Limits
from telemetry_adapter.rejections import Reason, Rejected
from telemetry_adapter.submission import Submission, parse_submission

LIMITS = Limits()
DEVICE = fleet.device_ids(1)[0]

documents = st.builds(
    lambda seed, processes, connections: fleet.submission(
        random.Random(seed), DEVICE, processes=processes, connections=connections
    ),
    st.integers(0, 2**32),
    st.integers(0, 3),
    st.integers(1, 3),
)
hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=["Cc", "Cs", "Zs", "Mn"]), max_size=10),
    st.sampled_from(["'; DROP TABLE submission_ledger; --", "\\", '"', "\x00", "１２７.０.０.１", "0x7f000001", "-0"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every place in a submission a value can be replaced or removed."""
    paths: list[tuple[Any, ...]] = [(key,) for key in document]
    for event_type, items in document["events"].items():
        paths.append(("events", event_type))
        for index, item in enumerate(items):
            paths.append(("events", event_type, index))
            paths.extend(("events", event_type, index, key) for key in item)
    return paths


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        document = document[step]
    return document


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A fleet submission with one structural mutation, and the mutation's name."""
    document: dict[str, Any] = draw(documents)
    path = draw(st.sampled_from(_paths(document)))
    kind = draw(st.sampled_from(["replace", "delete", "add_unknown", "upper_ids"]))
    if kind == "replace":
        _parent(document, path)[path[-1]] = draw(hostile_values)
    elif kind == "delete":
        del _parent(document, path)[path[-1]]
    elif kind == "add_unknown":
        target = _parent(document, path)
        if isinstance(target, dict):
            target[draw(st.text(max_size=8))] = draw(hostile_values)
    else:
        document["submission_id"] = document["submission_id"].upper()
    return document, kind


def outcome(body: object, limits: Limits = LIMITS) -> Submission | Rejected:
    try:
        return parse_submission(body, limits)
    except Rejected as rejection:
        return rejection


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_a_mutated_submission_is_accepted_normalised_or_rejected(case: tuple[dict[str, Any], str], raw: bool) -> None:
    document, kind = case
    text = json.dumps(document)
    result = outcome(text if raw else base64.b64encode(text.encode()).decode())
    assert isinstance(result, Submission | Rejected)
    if isinstance(result, Submission):
        assert result.submission_id == str(document["submission_id"]).lower()
        assert len(result.events) == fleet.expected_event_count(document)
        for _, details in result.events:
            json.loads(details)
    if kind == "upper_ids":
        assert isinstance(result, Submission)


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from(["submission_id", "device_id", "time_created", "events"]))
def test_removing_a_required_field_rejects_as_missing_field(document: dict[str, Any], name: str) -> None:
    del document[name]
    result = outcome(fleet.encode(document))
    assert isinstance(result, Rejected)
    assert result.reason is Reason.MISSING_FIELD


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from([True, 443.0, "443", -1, 65_536, None]))
def test_a_port_that_is_not_an_integer_in_range_rejects(document: dict[str, Any], port: Any) -> None:
    document["events"]["network_connection"][0]["destination_port"] = port
    result = outcome(fleet.encode(document))
    assert isinstance(result, Rejected)
    assert result.reason in (Reason.INVALID_PORT, Reason.MISSING_FIELD)


@settings(max_examples=300, deadline=None)
@given(documents, st.data())
def test_damaged_bytes_never_raise_anything_but_a_rejection(document: dict[str, Any], data: st.DataObject) -> None:
    body = bytearray(fleet.encode(document).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    assert isinstance(outcome(bytes(body[:cut]).decode("latin-1")), Submission | Rejected)


# --- linear cost --------------------------------------------------------------------------------------

SMALL = 128 * 1024
LARGE = MIB - 4096
# Accept every size the test builds, so the whole document is really decoded and validated.
SCALE_LIMITS = Limits(max_body_bytes=MIB, max_events=1_000_000, max_depth=64)


def _filled(prefix: str, unit: str, suffix: str, size: int) -> str:
    return prefix + unit * ((size - len(prefix) - len(suffix)) // len(unit)) + suffix


def _many_events(size: int) -> str:
    head = f'{{"submission_id":"{fleet.device_ids(2)[1]}","device_id":"{DEVICE}",'
    head += '"time_created":"2024-03-05T03:49:51","events":{"network_connection":['
    unit = '{"source_ip":"10.0.0.1","destination_ip":"2606:4700::1111","destination_port":443},'
    body = _filled(head, unit, "", size - 3).rstrip(",")
    return body + "]}}"


HOSTILE_BUILDERS: dict[str, Callable[[int], str]] = {
    "deep_nesting": lambda size: _filled('{"a":', "[", "", size // 2) + "]" * (size // 2 - 5) + "}",
    "gigantic_string": lambda size: _filled('{"submission_id":"', "a", '"}', size),
    "unicode_escapes": lambda size: _filled('{"noise":"', "\\u00e9\\ud800", '"}', size),
    "wide_object": lambda size: "{" + ",".join(f'"{i:032d}":0' for i in range(size // 40)) + "}",
    "huge_numbers": lambda size: _filled('{"noise":[', "1e400,", "0]}", size),
    "control_chars": lambda size: _filled('{"noise":"', "\\u0000\\u001f", '"}', size),
    "many_events": _many_events,
    "base64_of_many_events": lambda size: base64.b64encode(_many_events(size * 3 // 4).encode()).decode(),
}


def _json_baseline(body: str) -> None:
    """The floor any decoder pays: base64 (when used) and the standard library's JSON parse."""
    text = body if body.startswith("{") else base64.b64decode(body).decode()
    with contextlib.suppress(ValueError, RecursionError):
        json.loads(text)


def _decode(body: str) -> None:
    outcome(body, SCALE_LIMITS)


def _seconds(work: Callable[[str], None], body: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work(body)
        best = min(best, time.perf_counter() - started)
    return best


def _growth(work: Callable[[str], None], small: str, large: str) -> float:
    """How much the cost per byte grows from ``small`` to ``large`` (1.0 = perfectly linear)."""
    _seconds(work, large, 1)  # warm caches
    return (_seconds(work, large, 3) / len(large)) / (_seconds(work, small, 7) / len(small))


def _peak_bytes(body: str) -> int:
    tracemalloc.start()
    try:
        outcome(body, SCALE_LIMITS)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", sorted(HOSTILE_BUILDERS))
def test_hostile_bodies_cost_time_and_memory_linear_in_their_size(kind: str) -> None:
    small, large = HOSTILE_BUILDERS[kind](SMALL), HOSTILE_BUILDERS[kind](LARGE)
    assert len(large) <= MIB
    assert len(large) > 6 * len(small)
    growth = _growth(_decode, small, large)
    baseline = _growth(_json_baseline, small, large)
    memory_ratio = (_peak_bytes(large) / len(large)) / (_peak_bytes(small) / len(small))
    # Linear work grows like the baseline (caches make even json.loads dearer per byte at 1 MiB);
    # quadratic work would grow about 8 times faster. Generous, because two shared cores are noisy.
    assert growth < 3.0 * max(1.0, baseline), f"{kind}: cost per byte grew {growth:.1f}x (json.loads {baseline:.1f}x)"
    assert memory_ratio < 2.0, f"{kind}: memory per byte grew {memory_ratio:.1f}x"


def test_the_linear_cost_check_would_catch_quadratic_work() -> None:
    """The same measurement flags a deliberately quadratic parser, so a pass above means something."""

    def quadratic(body: str) -> None:
        text = ""
        for char in body[: len(body) // 64]:
            text = text + char
            text.count("x")

    assert _growth(quadratic, "a" * SMALL, "a" * (SMALL * 4)) > 3.0
