"""Request pacing that keeps every parallel push task, together, just under HubSpot's limit.

HubSpot's limit is per app and portal, so all mapped push tasks share one budget. Each task starts
at its fair share (limit / parallel tasks), which is safe however many tasks run. HubSpot reports
on every answer how much of the shared rolling window is used (``X-HubSpot-RateLimit-Max`` minus
``-Remaining``); from that each task steers towards the limit by taking a 1/N part of the unused
budget per step, so N tasks that all see the same free budget do not all grab it at once. When
other tasks finish, the remaining ones speed up; when the window is nearly spent, they brake.
No coordination service is needed, so this holds across workers on several machines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

# Aim for this share of the limit: room for requests in flight and clock skew between tasks.
HEADROOM = 0.97
# Re-plan the rate at most this often; per-answer changes would chase noise.
UPDATE_EVERY_S = 0.5
# Share of its 1/N part of the free budget a task takes per step. The window is a 10 s moving
# sum, so it reports a change late; small steps keep the tasks from overshooting meanwhile.
GAIN = 0.1
# Brake when the window has no more than this share left.
BRAKE_BELOW = 0.01
MAX_SHRINK = 0.5


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
        self._window_s = window_s
        self._max_rate = limit * HEADROOM / window_s
        self._min_rate = self._max_rate / max(1, parallel_tasks) / 8
        self.rate = self._max_rate / max(1, parallel_tasks)
        self._started = clock()
        # The first request waits one interval too: short tasks (a few batch writes each) that
        # start back to back would otherwise each add an unpaced request and overshoot together.
        self._next_slot = self._started + 1.0 / self.rate
        self._next_update = self._started
        self._paused_until = 0.0
        self._parallel_tasks = max(1, parallel_tasks)

    def acquire(self) -> None:
        """Block until this caller's request may go, reserving the slot after it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_slot, self._paused_until)
            self._next_slot = start + 1.0 / self.rate
        if start > now:
            self._sleep(start - now)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Steer towards the limit by what HubSpot says is left of the shared window."""
        try:
            maximum = int(headers["X-HubSpot-RateLimit-Max"])
            remaining = int(headers["X-HubSpot-RateLimit-Remaining"])
        except (KeyError, TypeError, ValueError):
            return
        try:
            window_s = int(headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) / 1000
        except (KeyError, TypeError, ValueError):
            window_s = self._window_s
        if maximum <= 0 or window_s <= 0:
            return
        with self._lock:
            now = self._clock()
            if now < self._next_update:
                return
            self._next_update = now + UPDATE_EVERY_S
            ceiling = min(self._max_rate, maximum * HEADROOM / window_s)
            if now - self._started < window_s:
                # The window still holds traffic from before this task started (or paused), and
                # other tasks may be starting too: hold the fair share.
                rate = self.rate
            else:
                free = ceiling - (maximum - remaining) / window_s
                rate = self.rate + GAIN * free / self._parallel_tasks
            if remaining <= maximum * BRAKE_BELOW:
                rate = min(rate, self.rate * 0.8)
            self.rate = min(max(rate, self.rate * MAX_SHRINK, self._min_rate), ceiling)

    def rate_limited(self, wait_s: float) -> None:
        """A 429 TEN_SECONDLY_ROLLING came back: pause every thread of this task, slow down."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + wait_s)
            # The window drains meanwhile: steer by it again only once it is refilled.
            self._started = self._paused_until
            self.rate = max(self._min_rate, self.rate * MAX_SHRINK)
