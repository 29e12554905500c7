"""RatePacer: fair share at start, steering by HubSpot's headers, backing off on 429."""

import pytest

from hubspot_provider.hooks.pacing import HEADROOM, RatePacer


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def pacer(limit=100, tasks=1):
    clock = FakeClock()
    return RatePacer(limit, 10.0, tasks, clock=clock, sleep=clock.sleep), clock


def test_a_lone_task_paces_just_under_the_limit():
    p, clock = pacer(limit=190)
    for _ in range(190):
        p.acquire()
    assert clock.now == pytest.approx(190 / (190 * HEADROOM / 10), rel=0.02)


def test_parallel_tasks_start_at_their_share_and_adapt_to_the_shared_window():
    p, _ = pacer(limit=100, tasks=4)
    assert p.rate == pytest.approx(100 * HEADROOM / 10 / 4)
    share = p.rate
    p.observe({"X-HubSpot-RateLimit-Remaining": "80", "X-HubSpot-RateLimit-Max": "100"})
    assert p.rate > share  # the others are idle: use their budget
    for _ in range(100):
        p.observe({"X-HubSpot-RateLimit-Remaining": "90", "X-HubSpot-RateLimit-Max": "100"})
    assert p.rate == pytest.approx(100 * HEADROOM / 10)  # never above the whole limit
    fast = p.rate
    p.observe({"X-HubSpot-RateLimit-Remaining": "2", "X-HubSpot-RateLimit-Max": "100"})
    assert p.rate < fast
    p.observe({})  # no headers: no change
    p.observe({"X-HubSpot-RateLimit-Remaining": "x", "X-HubSpot-RateLimit-Max": "100"})


def test_a_429_pauses_for_the_wait_and_halves_the_pace():
    p, clock = pacer(limit=100)
    p.acquire()
    before = p.rate
    p.rate_limited(3.0)
    p.acquire()
    assert clock.now >= 3.0
    assert p.rate == pytest.approx(before / 2)


def test_rejects_a_nonsense_limit():
    with pytest.raises(ValueError, match="rate limit must be positive"):
        RatePacer(0)
