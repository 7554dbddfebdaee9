"""Fuzzing the decoder by mutation: valid submissions, one mutation each, and hostile bodies at scale.

Complements ``tests/unit/test_decoder_properties.py`` (documents generated from scratch): here every
input starts as a real fleet submission, so the mutations reach deep into validation. Properties: only
``Rejected`` escapes; a mutation that must invalidate does, with the right reason; and the cost of a
hostile body grows linearly with its size, in executed work and in memory (counted, never timed).
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit import fleet
from devkit.hostile import HOSTILE_BUILDERS, LARGE, SMALL, decode, line_growth, peak_bytes
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
# Counted work, not seconds: the Python lines the decoder executes are the same on a busy machine as
# on an idle one. The wall-time version of this check (C code included) runs in ``make chaos``.


@pytest.mark.parametrize("kind", sorted(HOSTILE_BUILDERS))
def test_hostile_bodies_cost_work_and_memory_linear_in_their_size(kind: str) -> None:
    small, large = HOSTILE_BUILDERS[kind](SMALL), HOSTILE_BUILDERS[kind](LARGE)
    assert len(large) <= MIB
    assert len(large) > 6 * len(small)
    growth = line_growth(decode, small, large)
    # Linear work executes the same lines per byte at any size (fixed costs make small bodies dearer);
    # quadratic work would execute about 7 times more per byte at the larger size.
    assert growth < 1.25, f"{kind}: executed lines per byte grew {growth:.2f}x"
    # Bounded memory: a small multiple of the body itself (Python objects for the parsed document).
    assert peak_bytes(large) < 16 * len(large), f"{kind}: peak {peak_bytes(large)} bytes for {len(large)}"


def test_the_linear_cost_check_would_catch_quadratic_work() -> None:
    """The same measurement flags a deliberately quadratic scan, so a pass above means something."""

    def quadratic(body: str) -> None:
        sample = body[: len(body) // 4096]
        for i in range(len(sample)):
            for _ in range(i):
                pass

    assert line_growth(quadratic, "a" * SMALL, "a" * (SMALL * 4)) > 3.0
