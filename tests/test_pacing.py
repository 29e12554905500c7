"""RatePacer: fair share at start, steering by HubSpot's window headers, backing off on 429."""

import pytest

from hubspot_provider.hooks.pacing import HEADROOM, RatePacer

FULL = 100 * HEADROOM / 10  # the whole budget of a 100-per-10 s limit, in requests per second


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


def window(used, limit=100):
    return {
        "X-HubSpot-RateLimit-Max": str(limit),
        "X-HubSpot-RateLimit-Remaining": str(limit - used),
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }


def test_a_lone_task_paces_just_under_the_limit():
    p, clock = pacer(limit=190)
    for _ in range(190):
        p.acquire()
    assert clock.now == pytest.approx(190 / (190 * HEADROOM / 10), rel=0.02)


def test_parallel_tasks_start_at_their_share_and_never_speed_up_in_their_first_window():
    p, clock = pacer(tasks=4)
    assert p.rate == pytest.approx(FULL / 4)
    for _ in range(10):
        clock.now += 0.9
        p.observe(window(used=5))  # looks idle, but other tasks may be starting
    assert p.rate == pytest.approx(FULL / 4)


def test_after_a_window_a_task_takes_its_part_of_the_unused_budget():
    p, clock = pacer(tasks=4)
    clock.now = 10.0
    shares = []
    for _ in range(400):  # the others finished: only this task's requests remain in the window
        clock.now += 0.5
        p.observe(window(used=round(p.rate * 10)))
        shares.append(p.rate)
    assert shares[0] > FULL / 4
    assert shares[-1] == pytest.approx(FULL, rel=0.05)
    assert max(shares) <= FULL


def test_a_crowded_window_slows_the_task_down_and_a_full_one_brakes():
    p, clock = pacer(tasks=4)
    clock.now = 10.0
    start = p.rate
    p.observe(window(used=99))
    assert p.rate < start
    clock.now += 0.1
    slower = p.rate
    p.observe(window(used=10))  # too soon after the last step: ignored
    assert p.rate == slower
    p.observe({})  # no headers: no change
    p.observe({"X-HubSpot-RateLimit-Remaining": "x", "X-HubSpot-RateLimit-Max": "100"})
    assert p.rate == slower


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
