"""Realistic submissions, the sensors' known defects and hostile bodies (the input contract, docs/contract.md)."""

from __future__ import annotations

import base64
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

COMMANDS = (
    "notepad.exe",
    "C:\\Windows\\System32\\svchost.exe -k netsvcs -p",
    "powershell.exe -NoProfile -ExecutionPolicy Bypass -File C:\\scripts\\inventory.ps1",
    "/usr/bin/python3 /opt/agent/collect.py --interval 30",
    "explorer.exe",
    "chrome.exe --type=renderer --lang=en-US",
    "/bin/bash -c 'tar czf /tmp/backup.tgz /home/john'",
)
USERS = ("john", "alice", "SYSTEM", "root", "svc-backup", "Mária")
DESTINATIONS = ("142.250.74.110", "151.101.1.69", "2606:4700:4700::1111", "52.94.236.248", "8.8.8.8")

DEFECTS = ("bad_uuid", "null_cmdl", "bad_ip", "bad_port")
HOSTILE = ("not_base64", "not_utf8", "not_json", "not_object", "deep", "unknown_type", "huge_number")


def device_ids(count: int, seed: int = 7) -> list[str]:
    """Stable device ids for a fleet of ``count`` sensors."""
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def submission(
    rng: random.Random,
    device_id: str,
    *,
    processes: int | None = None,
    connections: int | None = None,
) -> dict[str, Any]:
    """A realistic valid submission: 3 to 5 events of each type unless counts are given."""
    n_process = rng.randint(3, 5) if processes is None else processes
    n_network = rng.randint(3, 5) if connections is None else connections
    created = datetime(2026, 11, 28, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 86_400))
    return {
        "submission_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "device_id": device_id,
        "time_created": created.replace(tzinfo=None).isoformat(timespec="microseconds"),
        "events": {
            "new_process": [{"cmdl": rng.choice(COMMANDS), "user": rng.choice(USERS)} for _ in range(n_process)],
            "network_connection": [
                {
                    "source_ip": f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                    "destination_ip": rng.choice(DESTINATIONS),
                    "destination_port": rng.choice((443, 80, 53, 8443, 0)),
                }
                for _ in range(n_network)
            ],
        },
    }


def encode(document: Any) -> str:
    """The body a sensor sends: base64 of the UTF-8 JSON."""
    return base64.b64encode(json.dumps(document).encode()).decode("ascii")


def with_defect(document: dict[str, Any], defect: str) -> dict[str, Any]:
    """A copy of ``document`` with one of the sensors' known defects."""
    broken: dict[str, Any] = json.loads(json.dumps(document))
    if defect == "bad_uuid":
        broken["submission_id"] = "not-a-uuid-" + broken["submission_id"][:8]
    elif defect == "null_cmdl":
        broken["events"]["new_process"] = [{"cmdl": None, "user": "john"}]
    elif defect == "bad_ip":
        broken["events"]["network_connection"] = [
            {"source_ip": "not-an-ip", "destination_ip": "8.8.8.8", "destination_port": 53}
        ]
    elif defect == "bad_port":
        broken["events"]["network_connection"] = [
            {"source_ip": "10.0.0.1", "destination_ip": "8.8.8.8", "destination_port": 70_000}
        ]
    else:
        raise ValueError(f"unknown defect {defect!r}")
    return broken


def hostile_body(kind: str) -> str:
    """A hostile message body of the given kind (never valid)."""
    bodies = {
        "not_base64": "%%% definitely not base64 %%%",
        "not_utf8": base64.b64encode(b"\xff\xfe\xfa not utf-8").decode(),
        "not_json": base64.b64encode(b"{this is not json").decode(),
        "not_object": base64.b64encode(b"[1, 2, 3]").decode(),
        "deep": base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode(),
        "unknown_type": encode(
            {
                "submission_id": str(uuid.uuid4()),
                "device_id": str(uuid.uuid4()),
                "time_created": "2024-03-05T03:49:51",
                "events": {"file_write": [{"path": "/etc/passwd"}]},
            }
        ),
        "huge_number": encode({"submission_id": 1e308, "n": "1e400"}).replace("1e+308", "1e400"),
    }
    return bodies[kind]


def expected_event_count(document: dict[str, Any]) -> int:
    """Events a valid submission should publish."""
    return sum(len(items or []) for items in document["events"].values())
