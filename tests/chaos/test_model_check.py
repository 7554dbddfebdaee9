"""The model checker (``chaos.model_check``), bounded for ``make test`` (100 examples, several hundred
deliveries, under a minute): hypothesis drives the real pipeline through arbitrary interleavings of
deliveries, faults, a second worker and deadline stops, and checks the delivery guarantees against a
model after every step. ``MODEL_CHECK_EXAMPLES`` scales it; ``make chaos`` runs many more."""

from __future__ import annotations

from chaos.model_check import KINESIS_ACTIONS, examples_from_env, run_model_check

EXAMPLES = 100
SEED = 1
"""Fixed, so every run checks the same interleavings and the coverage below cannot vary; ``make chaos``
explores new ones on every run."""
EXERCISED = {
    "deadline_stops",
    "handed_back",
    "ledger_failures",
    "leases_lost",
    "gave_up",
    "duplicates_suppressed",
    "rejected",
    "conflicting_duplicates",
    "quarantined",
    "quarantine_failures",
}


def test_the_guarantees_hold_in_every_interleaving_the_checker_tries(clean_database: str) -> None:
    examples = examples_from_env(EXAMPLES)
    result = run_model_check(clean_database, examples=examples, seed=SEED)
    assert result.examples >= examples
    assert result.steps > result.examples  # the examples did deliver batches
    if examples >= EXAMPLES:
        # Every fault and every way out of a batch happened somewhere in these examples.
        exercised = {name for name, count in result.happened.items() if count}
        assert set(KINESIS_ACTIONS) | EXERCISED <= exercised, sorted(set(KINESIS_ACTIONS) | EXERCISED - exercised)
