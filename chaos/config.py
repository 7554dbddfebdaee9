"""How hard the chaos run hits: one rate per fault kind, and the shape of the emulated queue.

Per-call rates apply to every PutRecords call; per-batch rates decide, for each batch, which
batch-level fault it gets. Every rate is a probability in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from telemetry_adapter.config import BreakerSettings, PublishSettings, Settings

STREAM = "events"
SHARDS = 4


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault kind."""

    record_failure: float = 0.03
    """Per record: comes back with an ErrorCode (half of them throttling), not written."""
    call_failure: float = 0.02
    """Per call: the whole PutRecords call fails before reaching Kinesis."""
    lost_answer: float = 0.01
    """Per call: the call is applied, then its answer is lost (the ambiguous case)."""
    throttle_burst: float = 0.005
    """Per call: a throttling burst starts; every record of every call is throttled for a while."""
    connection_kill: float = 0.04
    """Per batch: the processors' database backends are terminated between two Kinesis calls."""
    database_restart: float = 0.01
    """Per batch: the database restarts while the batch is publishing."""
    duplicate_delivery: float = 0.08
    """Per batch: the same messages go to two workers running at once."""
    worker_kill: float = 0.01
    """Per batch: a worker process is SIGKILLed after a Kinesis acknowledgement, before the ledger update."""
    budget_cut: float = 0.08
    """Per batch: the invocation has so little time that the publisher stops mid-batch."""

    def scaled(self, factor: float) -> FaultRates:
        """Every rate times ``factor`` (capped at 1); ``scaled(0)`` turns all faults off."""
        return replace(self, **{f.name: min(1.0, getattr(self, f.name) * factor) for f in fields(self)})


@dataclass(frozen=True)
class ChaosConfig:
    """The whole run: duration, traffic, faults and the emulated SQS queue."""

    duration_seconds: float = 600.0
    drain_timeout_seconds: float = 120.0
    """Upper bound of the fault-free drain that follows the fault phase."""
    seed: int = 7
    devices: int = 40
    batch_size: int = 10
    new_messages_per_batch: int = 8
    """Messages the fleet sends for every batch received (the queue never runs dry)."""
    invalid_share: float = 0.15
    duplicate_share: float = 0.1
    rates: FaultRates = field(default_factory=FaultRates)
    guarantee_each_fault: bool = True
    """Force each batch-level fault kind on the first batches, retrying a kind until it really happened."""
    visibility_seconds: float = 1.0
    """Emulated SQS visibility timeout: a failed or crashed message is redelivered after this long."""
    max_receives: int = 25
    """Emulated maxReceiveCount: a message received this often and still failing goes to the DLQ."""
    timeout_ms: int = 3_000
    """Lambda timeout of a normal invocation."""
    budget_cut_timeout_ms: tuple[int, int] = (330, 450)
    """Range of the Lambda timeout of an invocation cut short (just above the safety margin)."""
    safety_margin_ms: int = 300
    lease_grace_seconds: int = 1
    breaker_cooldown_seconds: int = 1
    """The circuit breaker's cooldown, on the run's compressed time scale like the lease: the emulated
    queue redelivers at a fixed visibility (no backoff), so a deployed 30 s cooldown would spend a
    refused message's receives towards the emulated dead-letter queue while it merely waits."""
    restart_block_seconds: tuple[float, float] = (0.3, 1.2)
    """How long an emulated restart keeps the database closed."""

    def settings(self) -> Settings:
        """Processor settings: fast retries and a short lease, so leases expire within seconds."""
        return Settings(
            stream_name=STREAM,
            publish=PublishSettings(
                safety_margin_ms=self.safety_margin_ms,
                default_budget_ms=self.timeout_ms,
                max_concurrency=4,
                max_attempts=8,
                backoff_base_ms=5,
                backoff_cap_ms=100,
                lease_grace_seconds=self.lease_grace_seconds,
            ),
            breaker=BreakerSettings(cooldown_seconds=self.breaker_cooldown_seconds),
        )
