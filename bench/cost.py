"""Dollars per million submissions, for the handler and for the Powertools idiom, from the measured figures.

Every price below is an assumption written down here, not fetched: AWS list prices for us-east-1 as
published in June 2025 (on-demand, no free tier, no savings plans). Change them here when they change.

What each design pays per million submissions:

* Lambda (both): invocations (``1e6 / batch size``) times the measured batch duration in GB-seconds
  at the function's memory, plus the request charge. The duration is this machine's, against moto, so
  read the Lambda line as an order of magnitude; the modelled-network figure is the closer one.
* The handler's ledger: PostgreSQL on RDS (the stack's defaults: ``db.t4g.micro``, single-AZ, 20 GB
  gp3) behind RDS Proxy, whose price is per vCPU of the instance (2 vCPUs at least). Both are paid
  by the hour whatever the load, so they are amortised over the submissions of a month at a stated
  sustained throughput (``--throughput``); statements cost nothing extra (gp3 has no I/O charge).
* The idiom's store: DynamoDB on demand, per request: the measured writes per submission (a
  conditional ``PutItem`` and an ``UpdateItem``, each item under 1 KB, so one write unit each) and
  reads (none on the happy path: Powertools reads back only a failed condition's item).
* Kinesis (the same records for both designs, so the same money): on demand, every record is billed
  rounded up to 1 KB of ingest, plus the stream-hour, amortised like the database. For a provisioned
  stream the per-record charge is PUT payload units (25 KB each, so one per record here); shown beside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

PRICES = "AWS list prices, us-east-1, as published in June 2025 (on-demand, no free tier)"
REGION = "us-east-1"
LAMBDA_GB_SECOND = 0.0000133334
"""Lambda, arm64, per GB-second (first 7.5 billion GB-s a month)."""
LAMBDA_PER_MILLION_REQUESTS = 0.20
DYNAMODB_PER_MILLION_WRITE_UNITS = 0.625
"""DynamoDB on-demand, Standard table class, per million write request units."""
DYNAMODB_PER_MILLION_READ_UNITS = 0.125
RDS_INSTANCE_HOUR = 0.016
"""RDS for PostgreSQL, db.t4g.micro, single-AZ, on-demand."""
RDS_INSTANCE_VCPUS = 2
RDS_PROXY_VCPU_HOUR = 0.015
RDS_PROXY_MIN_VCPUS = 2
RDS_GP3_GB_MONTH = 0.115
RDS_STORAGE_GB = 20
KINESIS_ON_DEMAND_PER_GB = 0.08
"""Kinesis on-demand data ingested, per GB, each record rounded up to 1 KB."""
KINESIS_ON_DEMAND_STREAM_HOUR = 0.04
KINESIS_PER_MILLION_PUT_PAYLOAD_UNITS = 0.014
"""Kinesis provisioned mode, per million 25 KB PUT payload units (shard-hours apart)."""
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
KIB = 1024
PAYLOAD_UNIT_BYTES = 25 * KIB
GIB = 1024**3


@dataclass(frozen=True)
class Workload:
    """What one batch size's run tells about the records, whatever the design."""

    batch_size: int
    record_sizes: tuple[int, ...]
    """Bytes of each Kinesis record of one batch."""

    @classmethod
    def of(cls, batch_size: int, sizes: Iterable[int]) -> Workload:
        """From the sizes of a batch's records."""
        return cls(batch_size, tuple(sizes))

    @property
    def per_submission(self) -> float:
        """Submissions per batch, as a divisor for per-batch counts."""
        return float(self.batch_size)


def lambda_cost(batch_ms: float, batch_size: int, memory_mb: int) -> float:
    """Lambda dollars per million submissions for batches of ``batch_size`` taking ``batch_ms`` each."""
    invocations = 1_000_000 / batch_size
    gb_seconds = batch_ms / 1000 * memory_mb / 1024
    return invocations * (gb_seconds * LAMBDA_GB_SECOND + LAMBDA_PER_MILLION_REQUESTS / 1_000_000)


def monthly_submissions(throughput: float) -> float:
    """Submissions in a month at ``throughput`` per second, sustained."""
    return throughput * SECONDS_PER_MONTH


def postgres_monthly() -> float:
    """The ledger's fixed monthly price: instance, proxy, storage."""
    proxy_vcpus = max(RDS_PROXY_MIN_VCPUS, RDS_INSTANCE_VCPUS)
    hourly = RDS_INSTANCE_HOUR + RDS_PROXY_VCPU_HOUR * proxy_vcpus
    return hourly * HOURS_PER_MONTH + RDS_GP3_GB_MONTH * RDS_STORAGE_GB


def postgres_cost(throughput: float) -> float:
    """PostgreSQL on RDS with RDS Proxy, per million submissions at ``throughput`` per second."""
    return postgres_monthly() / monthly_submissions(throughput) * 1_000_000


def dynamodb_cost(writes_per_submission: float, reads_per_submission: float) -> float:
    """DynamoDB on demand, per million submissions (one request unit per call: items under 1 KB)."""
    return writes_per_submission * DYNAMODB_PER_MILLION_WRITE_UNITS + reads_per_submission * (
        DYNAMODB_PER_MILLION_READ_UNITS
    )


def kinesis_on_demand_cost(workload: Workload, throughput: float) -> float:
    """Kinesis on demand per million submissions: ingest (1 KB rounding per record) and the stream-hour."""
    kib = sum(math.ceil(size / KIB) for size in workload.record_sizes) / workload.per_submission
    ingest = kib * KIB / GIB * KINESIS_ON_DEMAND_PER_GB * 1_000_000
    stream = KINESIS_ON_DEMAND_STREAM_HOUR * HOURS_PER_MONTH / monthly_submissions(throughput) * 1_000_000
    return ingest + stream


def kinesis_payload_units_cost(workload: Workload) -> float:
    """Kinesis provisioned per million submissions: PUT payload units only (shard-hours depend on sizing)."""
    units = sum(math.ceil(size / PAYLOAD_UNIT_BYTES) for size in workload.record_sizes) / workload.per_submission
    return units * KINESIS_PER_MILLION_PUT_PAYLOAD_UNITS


def costs(
    workload: Workload,
    *,
    handler_ms: float | None,
    powertools_ms: float | None,
    dynamodb_writes: int | None,
    dynamodb_reads: int | None,
    memory_mb: int,
    throughput: float,
) -> dict[str, float | None]:
    """Each line of both designs' bill per million submissions, and their totals (None: not measured)."""
    kinesis = kinesis_on_demand_cost(workload, throughput)
    handler_lambda = None if handler_ms is None else lambda_cost(handler_ms, workload.batch_size, memory_mb)
    idiom_lambda = None if powertools_ms is None else lambda_cost(powertools_ms, workload.batch_size, memory_mb)
    postgres = postgres_cost(throughput)
    dynamodb = (
        None
        if dynamodb_writes is None or dynamodb_reads is None
        else dynamodb_cost(dynamodb_writes / workload.per_submission, dynamodb_reads / workload.per_submission)
    )
    return {
        "handler_lambda": handler_lambda,
        "handler_postgres_rds": postgres,
        "powertools_lambda": idiom_lambda,
        "powertools_dynamodb": dynamodb,
        "kinesis_on_demand": kinesis,
        "kinesis_put_payload_units": kinesis_payload_units_cost(workload),
        "handler_total": None if handler_lambda is None else handler_lambda + postgres + kinesis,
        "powertools_total": None if idiom_lambda is None or dynamodb is None else idiom_lambda + dynamodb + kinesis,
    }


def assumptions(memory_mb: int, throughput: float) -> dict[str, object]:
    """The prices and sizing behind the cost figures, for ``build/bench.json``."""
    return {
        "prices": PRICES,
        "region": REGION,
        "lambda_arm64_usd_per_gb_second": LAMBDA_GB_SECOND,
        "lambda_usd_per_million_requests": LAMBDA_PER_MILLION_REQUESTS,
        "lambda_memory_mb": memory_mb,
        "dynamodb_on_demand_usd_per_million_writes": DYNAMODB_PER_MILLION_WRITE_UNITS,
        "dynamodb_on_demand_usd_per_million_reads": DYNAMODB_PER_MILLION_READ_UNITS,
        "rds_postgres_db_t4g_micro_usd_per_hour": RDS_INSTANCE_HOUR,
        "rds_proxy_usd_per_vcpu_hour": RDS_PROXY_VCPU_HOUR,
        "rds_proxy_vcpus_billed": max(RDS_PROXY_MIN_VCPUS, RDS_INSTANCE_VCPUS),
        "rds_gp3_usd_per_gb_month": RDS_GP3_GB_MONTH,
        "rds_storage_gb": RDS_STORAGE_GB,
        "postgres_usd_per_month": round(postgres_monthly(), 2),
        "kinesis_on_demand_usd_per_gb": KINESIS_ON_DEMAND_PER_GB,
        "kinesis_on_demand_usd_per_stream_hour": KINESIS_ON_DEMAND_STREAM_HOUR,
        "kinesis_usd_per_million_put_payload_units": KINESIS_PER_MILLION_PUT_PAYLOAD_UNITS,
        "throughput_submissions_per_second": throughput,
        "hours_per_month": HOURS_PER_MONTH,
    }
