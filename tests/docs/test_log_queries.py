"""The runbook sends the on-call engineer to the Logs Insights queries of ``docs/observability.md``; those
queries must show what the runbook promises, with the field names the processor's log lines carry."""

from __future__ import annotations

import re
from pathlib import Path

from telemetry_adapter.message_log import MessageIdentity

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "docs" / "observability.md"
RUNBOOK = ROOT / "docs" / "runbook.md"


def section_queries(page: Path, heading: str) -> list[str]:
    """The fenced ``text`` blocks under the heading ``heading`` (up to the next heading)."""
    text = page.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}\n")
    following = re.search(r"\n#{1,6} ", text[start + 1 :])
    section = text[start : start + 1 + following.start()] if following else text[start:]
    return re.findall(r"```text\n(.*?)```", section, flags=re.DOTALL)


def listed_fields(query: str) -> set[str]:
    """The fields a query's ``fields`` commands show."""
    return {
        name.strip()
        for line in re.findall(r"^\|?\s*fields\s+(.*)$", query, flags=re.MULTILINE)
        for name in line.split(",")
    }


def test_the_failed_messages_queries_name_each_message_its_submission_device_and_sender() -> None:
    identity = set(MessageIdentity("m").fields())
    assert identity == {"message_id", "sender_id", "submission_id", "device_id"}
    queries = section_queries(OBSERVABILITY, "#### Failed messages")
    per_message = [
        query for query in queries if 'message = "message not acknowledged"' in query and listed_fields(query)
    ]
    assert per_message, "no query lists the lines of the messages that were not acknowledged"
    assert identity | {"failure", "last_error"} <= listed_fields(per_message[0])
    lookups = [query for query in queries if 'message_id = "<message id>"' in query]
    assert lookups
    assert identity <= listed_fields(lookups[0])


def test_the_runbook_points_at_the_failed_messages_queries() -> None:
    runbook = RUNBOOK.read_text(encoding="utf-8")
    assert "(observability.md#failed-messages)" in runbook
