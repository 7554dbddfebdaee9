"""The emulated SQS queue: visibility timeout, deletion on acknowledgement, DLQ after max receives."""

from __future__ import annotations

import time

from chaos.redelivery import RedeliveryQueue


def test_acknowledged_messages_are_deleted_and_failed_ones_come_back_after_the_timeout() -> None:
    queue = RedeliveryQueue(visibility_seconds=0.05, max_receives=3)
    first, second = queue.send("a", valid=True), queue.send("b", valid=True)
    batch = queue.receive(10)
    assert [m.message_id for m in batch] == [first.message_id, second.message_id]
    queue.settle(batch, {second.message_id})
    assert queue.receive(10) == []  # invisible until the timeout ends
    time.sleep(0.06)
    again = queue.receive(10)
    assert [m.message_id for m in again] == [second.message_id]
    assert again[0].record()["attributes"]["ApproximateReceiveCount"] == "2"
    queue.settle(again, set())
    assert len(queue) == 0


def test_a_message_that_keeps_failing_moves_to_the_dead_letter_queue() -> None:
    queue = RedeliveryQueue(visibility_seconds=0.0, max_receives=3)
    message = queue.send("a", valid=True)
    for _ in range(3):
        batch = queue.receive(1)
        queue.settle(batch, {message.message_id})
    assert [m.message_id for m in queue.dead_letters] == [message.message_id]
    assert len(queue) == 0
    assert queue.redeliveries == 2
