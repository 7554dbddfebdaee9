"""The design a typical team writes first, with the same libraries: the baseline the benchmark compares to.

Message by message: decode and validate with the standard library, one ledger statement (an
``INSERT ... ON CONFLICT DO NOTHING`` that both deduplicates and records the submission), then one
PutRecords call carrying all of the submission's events. It is deliberately the cheapest version
of that design: it never records completion (a second statement per message would make it slower)
and it does not keep events in order when a call partly fails, so beating it is a fair claim.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pg8000.native

_INSERT_SQL = """
INSERT INTO submission_ledger (submission_id, device_id, content_digest, event_count, published_count, completed_at)
VALUES (CAST(:id AS uuid), CAST(:device AS uuid), :digest, :count, :count, now())
ON CONFLICT (submission_id) DO NOTHING
RETURNING 1
"""


class NaiveProcessor:
    """One statement and one PutRecords per message."""

    def __init__(self, connection: pg8000.native.Connection, client: Any, stream_name: str) -> None:
        self._connection = connection
        self._client = client
        self._stream_name = stream_name
        self.statements = 0
        self.calls = 0

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Process an SQS event; invalid messages are dropped, failed ones reported for redelivery."""
        failures = []
        for record in event["Records"]:
            try:
                self._process(record["body"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # invalid: drop it
            except Exception:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def _process(self, body: str) -> None:
        raw = base64.b64decode(body)
        document = json.loads(raw)
        submission_id = str(uuid.UUID(document["submission_id"]))
        device_id = str(uuid.UUID(document["device_id"]))
        time_created = datetime.fromisoformat(document["time_created"]).isoformat()
        events = [
            (event_type, _validate(event_type, item))
            for event_type, items in document["events"].items()
            for item in items or []
        ]
        self.statements += 1
        inserted = self._connection.run(
            _INSERT_SQL,
            id=submission_id,
            device=device_id,
            digest=hashlib.sha256(raw).digest(),
            count=len(events),
        )
        if not inserted or not events:
            return  # a duplicate, or nothing to publish
        timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        namespace = uuid.UUID(submission_id)
        records = [
            {
                "Data": json.dumps(
                    {
                        "id": str(uuid.uuid5(namespace, str(sequence))),
                        "event_type": event_type,
                        "device_id": device_id,
                        "submission_id": submission_id,
                        "time_created": time_created,
                        "processing_timestamp": timestamp,
                        "sequence": sequence,
                        "event_details": details,
                    }
                ).encode(),
                "PartitionKey": device_id,
            }
            for sequence, (event_type, details) in enumerate(events)
        ]
        self.calls += 1
        self._client.put_records(StreamName=self._stream_name, Records=records)


def _validate(event_type: str, item: dict[str, Any]) -> dict[str, Any]:
    if event_type == "new_process":
        if not item["cmdl"] or not item["user"]:
            raise ValueError("empty string")
        return {"cmdl": str(item["cmdl"]), "user": str(item["user"])}
    if event_type == "network_connection":
        port = item["destination_port"]
        if type(port) is not int or not 0 <= port <= 65_535:
            raise ValueError("port")
        return {
            "source_ip": str(ipaddress.ip_address(item["source_ip"])),
            "destination_ip": str(ipaddress.ip_address(item["destination_ip"])),
            "destination_port": port,
        }
    raise ValueError(f"unknown event type {event_type}")
