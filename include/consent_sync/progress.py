"""Progress lines for long tasks: rows done of total, rate, ETA, at a steady cadence."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Counts rows per outcome and logs a progress line at most every ``every_s`` seconds.

    :param what: what is being counted, e.g. ``push batch 3``.
    :param total: rows to do in all (rows already done before a resume included).
    :param done: rows already done when this starts (a resumed task).
    """

    def __init__(
        self,
        what: str,
        total: int,
        log: logging.Logger,
        every_s: float = 10.0,
        done: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.log = log
        self.every_s = every_s
        self.clock = clock
        self.resumed = done
        self.done = done
        self.outcomes: Counter[str] = Counter()
        self.started = clock()
        self._last_log = self.started

    def advance(self, outcome: str, rows: int = 1) -> None:
        self.done += rows
        self.outcomes[outcome] += rows
        now = self.clock()
        if now - self._last_log >= self.every_s:
            self._last_log = now
            self.log.info("%s", self.line())

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = (self.done - self.resumed) / elapsed
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 else "unknown"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        counts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.what}: {self.done:,}/{self.total:,} rows ({pct:.0f}%), {rate:.1f} rows/s, "
            f"ETA {eta}" + (f" [{counts}]" if counts else "")
        )
