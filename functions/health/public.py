"""The health URL's answer when it needs no auth (``HEALTH_URL_AUTH=NONE``): statuses only, computed at
most once per ``PUBLIC_ANSWER_SECONDS``.

Anyone can call a public URL, so the answer says how the service is and nothing about what it is made
of: the overall status, each check's status and the time, without resource names, depths, ages,
latencies or error codes (the operators get those by invoking the function, which IAM authorises).
And a flood must not buy a flood of checks: each answer costs a CloudWatch ``GetMetricData`` call, AWS
calls and ledger queries, so an execution environment reuses its last answer for
``PUBLIC_ANSWER_SECONDS``. With the reserved concurrency of two the stack gives a public health
function, that bounds the checks to a few per ``PUBLIC_ANSWER_SECONDS``, whatever the request rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

PUBLIC_ANSWER_SECONDS = 10.0
"""How long an execution environment reuses its public answer: fresh enough for an uptime monitor."""


def statuses_only(body: Mapping[str, Any]) -> dict[str, Any]:
    """The health answer with every detail but the statuses (and the time) left out."""
    checks = body.get("checks", {})
    answer: dict[str, Any] = {
        "status": body["status"],
        "checks": {name: {"status": check["status"]} for name, check in checks.items()},
    }
    if "time" in body:
        answer["time"] = body["time"]
    return answer


class PublicAnswers:
    """The last public answer of this execution environment, reused for ``PUBLIC_ANSWER_SECONDS``.

    Lambda runs one request at a time in an environment, so no lock is needed.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._answer: dict[str, Any] | None = None
        self._expires = 0.0

    def get(self, compute: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        """The answer, from ``compute()`` (the full health body) when the last one is too old."""
        now = self._clock()
        if self._answer is None or now >= self._expires:
            self._answer = statuses_only(compute())
            self._expires = now + PUBLIC_ANSWER_SECONDS
        return self._answer
