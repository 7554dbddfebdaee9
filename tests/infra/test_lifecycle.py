"""What each stage leaves behind when its stack is deleted, or when its first create fails.

`dev` is disposable: deleting it deletes everything it created (no final snapshot, no kept key or
log). Any other stage keeps what holds data (the queues, the stream, the buckets, the functions'
logs) when the stack is deleted, and removes it when the first create rolls back, so a retry does not
collide with a name the failed attempt used.
"""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Assembly, Synthesized

KEPT = "RetainExceptOnCreate"


def by_name(synthesized: Synthesized, resource_type: str, key: str) -> dict[str, dict[str, Any]]:
    return {value["Properties"][key]: value for value in synthesized.of_type(resource_type).values()}


def test_the_queues_outlive_a_deleted_stack_outside_dev(assembly: Assembly) -> None:
    for name, policy in (("default", "Delete"), ("prod", KEPT)):
        synthesized = assembly.variants[name]
        stage = synthesized.stack.names.stage
        queues = by_name(synthesized, "AWS::SQS::Queue", "QueueName")
        for queue in (f"telemetry-adapter-{stage}-submissions", f"telemetry-adapter-{stage}-submissions-dlq"):
            assert queues[queue]["DeletionPolicy"] == policy, (name, queue)
        # The clean-up schedule's dead-letter queue holds schedule events, nothing a later run needs.
        assert queues[f"telemetry-adapter-{stage}-cleanup-dlq"]["DeletionPolicy"] == "Delete"
