"""Request pacing that keeps every parallel push task, together, just under HubSpot's limit.

HubSpot's limit is a count: at most ``X-HubSpot-RateLimit-Max`` requests per app in any rolling
window (10 s), shared by every task. Each answer says how much of it was used when its request
arrived (``Max`` minus ``-Remaining``). A task sends while its estimate of the window's count now
stays under a ceiling just below the limit, and never faster than the part of the limit's average
rate that the others leave it, so the window fills evenly rather than in bursts.

The estimate keeps a shadow of the window. The task's own requests are known exactly. The other
tasks' requests are placed in time from how their part of the count grew between answers, so they
leave the shadow when they leave HubSpot's window: a finished task's traffic frees budget as it
drains, and a burst of others keeps the window full until its end. Requests the others sent since
the newest answer are extrapolated from their recent rate (before that is known: as many others
as the window showed, each sending like this task).

So a task alone reaches the whole limit after its first answer, a task that follows another takes
the budget over as the other's requests leave the window, and tasks that start together see each
other within one round trip. Nothing but HubSpot's headers is shared, so this holds across workers
on several machines.

Tasks sharing the window decide on views that are stale by up to their own spacing: at a full
window each of them may see the same last request of room at the same moment. So while other
tasks' requests are in the window, a task leaves a request of room per other task (at a small
limit the 2% headroom is less than one request), and when its view is stale and showed the
window nearly full it sends one request at a time to see, as in its first window.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Mapping

# Aim at this share of the limit: room for the tasks' simultaneous decisions and stale answers.
HEADROOM = 0.98
# Others' recent sending rate is taken over this span; shorter ones are mostly count noise.
TREND_S = 1.0
# Others' requests not yet seen in an answer are extrapolated at most this far.
TREND_HORIZON_S = 0.5
# While the window is full, look again this often (the estimate drains as requests leave it).
POLL_S = 0.02
# The room kept for other tasks' simultaneous decisions is at most this share of the limit.
MAX_ROOM_SHARE = 0.1
# A stale view that showed the window at least this share of the ceiling is probed, not trusted.
NEARLY_FULL = 0.9
# The slowest recent round trip, which a view must outlast to count as stale when the window is
# nearly full, shrinks by this factor per answer (slow answers are remembered for a while).
ROUND_TRIP_DECAY = 0.97


class RatePacer:
    """Thread-safe pacer: :meth:`acquire` returns when the next request may start.

    :param limit: requests allowed per window for the whole app (``rate_limit_per_10s``).
    :param window_s: length of HubSpot's rolling window in seconds (answers may correct both).
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
        self._limit = limit
        self._window_s = window_s
        self._parallel_tasks = max(1, parallel_tasks)
        self._mine: deque[float] = deque()  # this task's send times, oldest first
        self._others: deque[float] = deque()  # the other tasks' estimated arrival times
        self._first_seen: float | None = None
        self._seen_at = 0.0  # send time of the newest answered request
        self._seen_others = 0  # the others' part of the window then
        self._seen_mine = 1
        self._seen_used = 0  # the window's count then
        self._round_trip = 0.0  # the slowest recent answer's, decaying
        self._probe_after = 0.0  # how stale a view may get before one request goes to see
        self._paused_until = 0.0
        # Until an answer shows the window, go at the fair share, the first request too: short
        # tasks that start back to back would otherwise each add unpaced requests together.
        self._last_sent = clock()

    def _ceiling(self) -> float:
        return self._limit * HEADROOM

    def _interval(self) -> float:
        """Seconds between requests at the whole limit's average rate."""
        return self._window_s / self._ceiling()

    @staticmethod
    def _between(times: deque[float], start: float, stop: float) -> int:
        """How many of ``times`` (sorted) lie in ``(start, stop]``."""
        return bisect_right(times, stop) - bisect_right(times, start)

    def _others_rate(self) -> float | None:
        """The others' requests per second before the newest answer (None: too early to tell)."""
        if self._first_seen is None or self._seen_at - self._first_seen < TREND_S:
            return None
        return self._between(self._others, self._seen_at - TREND_S, self._seen_at) / TREND_S

    def _spacing(self) -> float:
        """Seconds between this task's requests: what the limit's average rate leaves it."""
        if self._first_seen is None:
            return self._interval() * self._parallel_tasks
        others = self._others_rate()
        rate = 1.0 / self._interval()
        if others is not None:
            # Sharing the average rate keeps the window filling evenly; tasks that each went at
            # the whole rate would fill it in bursts and leave it idle until the burst drains.
            rate = max(rate / self._parallel_tasks, rate - others)
        return 1.0 / rate

    def _unseen_others(self, now: float) -> float:
        """Requests the others sent after the newest answered one (no answer shows them yet)."""
        ahead = min(max(0.0, now - self._seen_at), TREND_HORIZON_S)
        others = self._others_rate()
        if others is not None:
            return others * ahead
        # No trend yet: the others go on as they were (replacing what drains from the window),
        # or, when they just started too, send like this task does.
        steady = self._seen_others / self._window_s * ahead
        tasks = min(self._parallel_tasks - 1, self._seen_others / self._seen_mine)
        return max(steady, tasks * self._between(self._mine, self._seen_at, now))

    def _estimate(self, now: float) -> float:
        """Requests in the shared window now, this task's own ones exactly."""
        horizon = now - self._window_s
        mine = self._between(self._mine, horizon, now)
        if self._first_seen is None:
            return mine * self._parallel_tasks  # blind: every task may be doing the same
        return mine + self._between(self._others, horizon, now) + self._unseen_others(now)

    def _room_ceiling(self, now: float) -> float:
        """The count this task may fill the window to now.

        The other tasks decide on views as stale as this one's: each may take the same last
        request of room at the same moment. So while their requests are in the window, a request
        of room stays free per other task (at most a tenth of the limit, so a tiny limit still
        leaves room to send); a task alone goes up to the ceiling.
        """
        ceiling = self._ceiling()
        if self._first_seen is None:
            return ceiling
        if self._between(self._others, now - self._window_s, now) or self._unseen_others(now):
            room = min(self._parallel_tasks - 1, self._limit * MAX_ROOM_SHARE)
            return min(ceiling, self._limit - room)
        return ceiling

    def try_acquire(self) -> float:
        """Reserve a request now if the budget allows and return 0.0; else seconds to wait."""
        with self._lock:
            return self._try(self._clock())

    def _try(self, now: float) -> float:
        while self._mine and self._mine[0] <= now - 2 * self._window_s:
            self._mine.popleft()
        wait = max(self._paused_until, self._last_sent + self._spacing()) - now
        if wait > 0:
            return wait
        ceiling = self._room_ceiling(now)
        if self._estimate(now) + 1 > ceiling:
            return POLL_S
        stale = now - self._seen_at
        if self._first_seen is not None and stale > TREND_HORIZON_S:
            # The first answer's requests were placed in the window by guess, so the room their
            # drain makes is a guess too; and a view older than the extrapolation of the others
            # (and than answers take to come) may hide that they filled the window. So while the
            # view is stale in the first window, or showed the window nearly full, one request at
            # a time goes to see, less and less often while answers show a full window.
            guessing = now - self._first_seen < self._window_s
            nearly_full = self._seen_used + 1 > NEARLY_FULL * ceiling
            if guessing or (nearly_full and stale > self._round_trip):
                if stale < self._probe_after or self._between(self._mine, self._seen_at, now):
                    return POLL_S
        self._mine.append(now)
        self._last_sent = now
        return 0.0

    def acquire(self) -> float:
        """Block until this caller's request may go; return its send time for :meth:`observe`."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._try(now)
            if wait <= 0:
                return now
            self._sleep(wait)

    def observe(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Take in what an answer says about the window; ``sent_at`` is its :meth:`acquire` time."""
        try:
            maximum = int(headers["X-HubSpot-RateLimit-Max"])
            remaining = int(headers["X-HubSpot-RateLimit-Remaining"])
        except (KeyError, TypeError, ValueError):
            return
        if maximum <= 0:
            return
        with self._lock:
            self._round_trip = max(ROUND_TRIP_DECAY * self._round_trip, self._clock() - sent_at)
            try:
                window_s = int(headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) / 1000
            except (KeyError, TypeError, ValueError):
                window_s = self._window_s
            if window_s > 0:
                self._window_s = window_s
            self._limit = min(self._limit, maximum)
            if self._first_seen is not None and sent_at <= self._seen_at:
                return  # an older request answered late: the window has moved on
            self._place_others(sent_at, maximum - remaining)

    def _place_others(self, sent_at: float, used: int) -> None:
        """Bring the shadow of the others' requests in line with what the window held."""
        horizon = sent_at - self._window_s
        while self._others and self._others[0] <= horizon:
            self._others.popleft()
        mine = max(1, self._between(self._mine, horizon, sent_at))
        others = max(0, used - mine)
        missing = others - len(self._others)
        if missing > 0:
            # They arrived since the previous answer; on the first one, anywhere in the window.
            start = horizon if self._first_seen is None else self._seen_at
            step = (sent_at - start) / missing
            self._others.extend(start + step * (i + 1) for i in range(missing))
        for _ in range(-missing):
            self._others.popleft()  # the oldest left earlier than the shadow assumed
        if self._first_seen is None:
            self._first_seen = sent_at
        full = used + 1 > self._ceiling()
        self._probe_after = (
            min(max(1.0, 2 * self._probe_after), self._window_s / 2) if full else 0.0
        )
        self._seen_at, self._seen_others, self._seen_mine = sent_at, others, mine
        self._seen_used = used

    def rate_limited(self, wait_s: float) -> None:
        """A 429 TEN_SECONDLY_ROLLING came back: pause every thread of this task for ``wait_s``."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + wait_s)
