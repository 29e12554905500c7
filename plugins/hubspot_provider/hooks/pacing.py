"""Request pacing that keeps every parallel push task, together, just under HubSpot's limit.

HubSpot's limit is per app and portal, so all mapped push tasks share one budget. Each task starts
at its fair share (limit / parallel tasks) and then steers by the ``X-HubSpot-RateLimit-Remaining``
header, which reports what is left of the shared rolling window: plenty left means other tasks are
idle (speed up, up to the whole limit); little left means the window is nearly spent (slow down).
A 429 pauses the task for the window and halves its pace.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

# Aim for this share of the limit, leaving a little room for clock skew between tasks.
HEADROOM = 0.97
# Keep this share of the window unspent before slowing down; above HIGH_WATER, speed up.
LOW_WATER = 0.08
HIGH_WATER = 0.30


class RatePacer:
    """Thread-safe pacer: :meth:`acquire` returns when the next request may start.

    :param limit: requests allowed per window for the whole app (``rate_limit_per_10s``).
    :param window_s: length of HubSpot's rolling window in seconds.
    :param parallel_tasks: how many push tasks share the limit at most (the pool's slots).
    """

    def __init__(
        self,
        limit: int,
        window_s: float = 10.0,
        parallel_tasks: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit <= 0:
            raise ValueError(f"rate limit must be positive, got {limit}")
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._max_rate = limit * HEADROOM / window_s
        self._min_rate = self._max_rate / max(1, parallel_tasks) / 8
        self.rate = self._max_rate / max(1, parallel_tasks)
        self._next_slot = clock()
        self._paused_until = 0.0
        self.waited_s = 0.0

    def acquire(self) -> None:
        """Block until this caller's request may go, reserving the slot after it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_slot, self._paused_until)
            self._next_slot = start + 1.0 / self.rate
        wait = start - now
        if wait > 0:
            self.waited_s += wait
            self._sleep(wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adapt the pace to what HubSpot reports is left of the shared window."""
        try:
            remaining = int(headers["X-HubSpot-RateLimit-Remaining"])
            maximum = int(headers["X-HubSpot-RateLimit-Max"])
        except (KeyError, TypeError, ValueError):
            return
        if maximum <= 0:
            return
        with self._lock:
            if remaining < maximum * LOW_WATER:
                self.rate = max(self._min_rate, self.rate * 0.85)
            elif remaining > maximum * HIGH_WATER:
                self.rate = min(self._max_rate, self.rate * 1.05)

    def rate_limited(self, wait_s: float) -> None:
        """A 429 TEN_SECONDLY_ROLLING came back: pause everyone in this task and slow down."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + wait_s)
            self.rate = max(self._min_rate, self.rate * 0.5)
