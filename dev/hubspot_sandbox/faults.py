"""HubSpot under pressure: rate limits, answers scripted by tests, and seeded random faults."""

from __future__ import annotations

import random
from collections import defaultdict, deque
from datetime import UTC, datetime
from typing import Any

from dev.hubspot_sandbox.settings import SandboxSettings

ROLLING_POLICY = "TEN_SECONDLY_ROLLING"
DAILY_POLICY = "DAILY"
RANDOM_ERROR_STATUSES = (500, 502, 503)


class RateLimiter:
    """Per-token rolling window plus a daily quota (days turn over at UTC midnight).

    Every authenticated API request counts, refused ones included: a client that keeps calling
    while limited stays limited, as with HubSpot, and only backing off empties the window.
    """

    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._days: dict[str, tuple[str, int]] = {}

    def admit(
        self, token: str, now: float, settings: SandboxSettings
    ) -> tuple[str | None, dict[str, str]]:
        """Count one request; answer the policy it breaks (if any) and the rate-limit headers."""
        window = self._windows[token]
        horizon = now - settings.rate_window_ms / 1000
        while window and window[0] <= horizon:
            window.popleft()
        window.append(now)
        today = datetime.now(UTC).date().isoformat()
        day, used = self._days.get(token, (today, 0))
        used = used + 1 if day == today else 1
        self._days[token] = (today, used)

        headers: dict[str, str] = {}
        policy = None
        if settings.rate_limit_per_10s is not None:
            limit = settings.rate_limit_per_10s
            headers["X-HubSpot-RateLimit-Max"] = str(limit)
            headers["X-HubSpot-RateLimit-Remaining"] = str(max(0, limit - len(window)))
            headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(settings.rate_window_ms)
            if len(window) > limit:
                policy = ROLLING_POLICY
        if settings.daily_limit is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(settings.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, settings.daily_limit - used)
            )
            if used > settings.daily_limit:
                policy = DAILY_POLICY
        return policy, headers

    def reset(self) -> None:
        self._windows.clear()
        self._days.clear()


_ANSWER_KEYS = {
    "status",
    "policy",
    "retry_after",
    "drop",
    "delay_ms",
    "category",
    "message",
    "errors",
    "call_status",
    "times",
    "match",
}
_MATCH_KEYS = {"email", "method", "path_contains"}


def _checked_answer(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ValueError(f"a scripted answer must be an object, got {answer!r}")
    unknown = set(answer) - _ANSWER_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) in scripted answer: {', '.join(sorted(unknown))}")
    if not {"status", "drop", "delay_ms"} & set(answer):
        raise ValueError(f"a scripted answer needs status, drop or delay_ms: {answer!r}")
    if "status" in answer and not isinstance(answer["status"], int):
        raise ValueError("a scripted answer's status must be an integer")
    match = answer.get("match") or {}
    if not isinstance(match, dict) or set(match) - _MATCH_KEYS:
        raise ValueError(f"match takes only {', '.join(sorted(_MATCH_KEYS))}")
    if int(answer.get("times", 1)) < 1:
        raise ValueError("times must be at least 1")
    return dict(answer)


class AnswerScript:
    """A FIFO of answers, each taken by the next API request it matches (``times`` repeats it)."""

    def __init__(self) -> None:
        self._queue: list[list[Any]] = []  # [answer, uses left]

    def add(self, answers: list[dict[str, Any]]) -> None:
        checked = [_checked_answer(a) for a in answers]
        self._queue.extend([a, int(a.get("times", 1))] for a in checked)

    def take(self, method: str, path: str, emails: list[str]) -> dict[str, Any] | None:
        for index, entry in enumerate(self._queue):
            answer = entry[0]
            if _matches(answer.get("match") or {}, method, path, emails):
                entry[1] -= 1
                if entry[1] == 0:
                    del self._queue[index]
                return answer
        return None

    def pending(self) -> list[dict[str, Any]]:
        return [{**answer, "times": left} for answer, left in self._queue]

    def clear(self) -> None:
        self._queue.clear()


def _matches(match: dict[str, Any], method: str, path: str, emails: list[str]) -> bool:
    if "method" in match and match["method"].upper() != method:
        return False
    if "path_contains" in match and match["path_contains"] not in path:
        return False
    if "email" in match and match["email"].lower() not in {e.lower() for e in emails}:
        return False
    return True


class RandomFaults:
    """Seeded draws for latency jitter, dropped connections and 5xx answers."""

    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)

    def reseed(self, seed: int | None) -> None:
        self._rng.seed(seed)

    def latency_s(self, settings: SandboxSettings) -> float:
        jitter = (
            self._rng.uniform(0, settings.latency_jitter_ms) if settings.latency_jitter_ms else 0
        )
        return (settings.latency_ms + jitter) / 1000

    def draw(self, settings: SandboxSettings) -> str | int | None:
        """``"drop"``, a 5xx status, or None for a normal answer."""
        if not (settings.drop_rate or settings.error_rate):
            return None
        roll = self._rng.random()
        if roll < settings.drop_rate:
            return "drop"
        if roll < settings.drop_rate + settings.error_rate:
            return self._rng.choice(RANDOM_ERROR_STATUSES)
        return None
