"""What the fleet sends during a chaos run, and what the stream must hold afterwards.

Valid submissions (1 to 8 events, so publishing takes several ordered calls), the sensors' known
defects, hostile bodies, and exact re-sends of earlier submissions (duplicates to suppress). Every
invalid submission gets a fresh id that is never sent valid, so any record carrying one is a fault.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from devkit import fleet
from telemetry_adapter.config import Limits
from telemetry_adapter.submission import Submission, parse_submission

# "deep" is left out of the mix: it is a 270 KB body whose cost says nothing about resilience (the
# fuzzing tests cover it).
_HOSTILE = tuple(kind for kind in fleet.HOSTILE if kind != "deep")


@dataclass
class Expectations:
    """The valid submissions sent (normalised) and the ids of invalid ones."""

    valid: dict[str, Submission] = field(default_factory=dict)
    invalid_ids: set[str] = field(default_factory=set)


class Traffic:
    """Generates message bodies and remembers what each should lead to."""

    def __init__(self, *, seed: int, devices: int, invalid_share: float, duplicate_share: float) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
        self._devices = fleet.device_ids(devices, seed=seed)
        self._invalid_share = invalid_share
        self._duplicate_share = duplicate_share
        self._sent_valid: list[str] = []
        self.expected = Expectations()

    def next_body(self) -> tuple[str, bool]:
        """The next message body and whether it is a valid submission."""
        roll = self._rng.random()
        if roll < self._invalid_share:
            return self._invalid(), False
        if roll < self._invalid_share + self._duplicate_share and self._sent_valid:
            return self._rng.choice(self._sent_valid), True
        document = fleet.submission(
            self._rng,
            self._rng.choice(self._devices),
            processes=self._rng.randint(0, 4),
            connections=self._rng.randint(1, 4),
        )
        body = fleet.encode(document)
        submission = parse_submission(body, Limits())
        self.expected.valid[submission.submission_id] = submission
        self._sent_valid.append(body)
        return body, True

    def _invalid(self) -> str:
        if self._rng.random() < 0.3:
            return fleet.hostile_body(self._rng.choice(_HOSTILE))
        document = fleet.submission(self._rng, self._rng.choice(self._devices))
        self.expected.invalid_ids.add(document["submission_id"])
        return fleet.encode(fleet.with_defect(document, self._rng.choice(fleet.DEFECTS)))
