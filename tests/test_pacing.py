"""RatePacer against a simulated HubSpot window, on a deterministic clock.

The simulation keeps HubSpot's rolling window as the sandbox does (every arriving request counts,
429s included; the headers tell the count at arrival) and delivers each answer after a latency, so
the pacers see the window late, as they do in production. Tasks send with up to 4 requests in
flight, like the hook's threads; a 429 pauses the task for the window and the request is sent again.
"""

import heapq
import random
from collections import Counter, deque
from dataclasses import dataclass, field

import pytest

from hubspot_provider.hooks.pacing import HEADROOM, RatePacer

LIMIT = 190
WINDOW_S = 10.0


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def headers(used, limit=LIMIT, window_ms=10_000):
    return {
        "X-HubSpot-RateLimit-Max": str(limit),
        "X-HubSpot-RateLimit-Remaining": str(max(0, limit - used)),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(window_ms),
    }


class Window:
    """HubSpot's per-app rolling window, as the sandbox counts it."""

    def __init__(self, limit=LIMIT):
        self.limit = limit
        self.arrivals = deque()
        self.log = []  # (time, task, status)

    def arrive(self, now, task):
        while self.arrivals and self.arrivals[0] <= now - WINDOW_S:
            self.arrivals.popleft()
        self.arrivals.append(now)
        status = 429 if len(self.arrivals) > self.limit else 200
        self.log.append((now, task, status))
        return status, headers(len(self.arrivals), self.limit)

    def sent(self, task=None, start=0.0, stop=float("inf")):
        return [t for t, who, _ in self.log if (task is None or who == task) and start <= t < stop]

    def share_429(self):
        return sum(status == 429 for *_, status in self.log) / len(self.log)

    def busiest(self):
        times = [t for t, *_ in self.log]
        return max(sum(1 for u in times if t - WINDOW_S < u <= t) for t in times)


@dataclass
class Task:
    start: float
    requests: int
    parallel_tasks: int = 4
    in_flight: int = 0
    pacer: RatePacer | None = None
    wake_at: float | None = None
    finished: float | None = None
    sends: list = field(default_factory=list)


def simulate(tasks, window, latency=0.1, max_in_flight=4, limit=LIMIT):
    """Run the tasks to the end; return the clock.

    :param latency: seconds from a request's arrival to its answer, or a function drawing them.
    :param limit: the limit each task's pacer is configured with (HubSpot's is the window's).
    """
    clock = FakeClock()
    answer_after = latency if callable(latency) else lambda: latency
    events = []  # (time, order, kind, task index, payload)
    order = 0

    def schedule(at, kind, index, payload=None):
        nonlocal order
        order += 1
        heapq.heappush(events, (at, order, kind, index, payload))

    def wake(index, at):
        task = tasks[index]
        if task.wake_at is None or at < task.wake_at:
            task.wake_at = at
            schedule(at, "wake", index)

    for index, task in enumerate(tasks):
        schedule(task.start, "start", index)
    while events:
        at, _, kind, index, payload = heapq.heappop(events)
        clock.now = at
        task = tasks[index]
        if kind == "start":
            task.pacer = RatePacer(limit, WINDOW_S, task.parallel_tasks, clock=clock)
            wake(index, at)
        elif kind == "answer":
            sent_at, status, answer_headers = payload
            task.pacer.observe(answer_headers, sent_at)
            task.in_flight -= 1
            if status == 429:
                task.pacer.rate_limited(WINDOW_S)
                task.requests += 1
            if not task.requests and not task.in_flight:
                task.finished = at
            wake(index, at)
        elif kind == "wake" and task.wake_at == at:
            task.wake_at = None
            while task.requests and task.in_flight < max_in_flight:
                wait = task.pacer.try_acquire()
                if wait > 0:
                    wake(index, at + wait)
                    break
                status, answer_headers = window.arrive(at, index)
                task.requests -= 1
                task.in_flight += 1
                schedule(at + answer_after(), "answer", index, (at, status, answer_headers))
    return clock


def test_a_lone_task_reaches_the_limit_within_its_first_window():
    window = Window()
    (task,) = tasks = [Task(start=0.0, requests=1000)]
    simulate(tasks, window)
    first_window = window.sent(0, 0.0, WINDOW_S)
    assert len(first_window) >= 0.9 * LIMIT
    assert window.share_429() == 0
    assert window.busiest() <= LIMIT
    # Sustained: 1000 requests in about 1000 / (19 * HEADROOM) seconds.
    assert task.finished <= 1000 / (LIMIT / WINDOW_S * 0.95)


def test_four_tasks_starting_together_on_a_free_window_share_it_without_429s():
    window = Window()
    tasks = [Task(start=0.0, requests=600) for _ in range(4)]
    simulate(tasks, window)
    assert window.share_429() < 0.01
    assert window.busiest() <= LIMIT
    span = max(t.finished for t in tasks)
    assert 2400 / span >= 0.9 * LIMIT / WINDOW_S


def test_tasks_together_fill_the_window_evenly_not_in_bursts():
    # Each at the whole average rate, four tasks would fill the window in 2.5 s, then wait for
    # that burst to drain, and lag behind it at every refill.
    window = Window()
    tasks = [Task(start=0.0, requests=600) for _ in range(4)]
    simulate(tasks, window)
    per_second = Counter(int(t) for t, *_ in window.log if t >= 3.0)
    assert max(per_second.values()) <= 1.6 * LIMIT / WINDOW_S


def test_a_task_following_a_finished_one_takes_the_budget_over_as_the_window_drains():
    # airflow dags test: mapped push tasks one after another, a few seconds of start-up between.
    window = Window()
    first = Task(start=0.0, requests=400)
    simulate([first], window)
    second = Task(start=first.finished + 2.0, requests=400)
    window_before = list(window.log)
    simulate([Task(start=0.0, requests=0), second], window)
    assert window.log[: len(window_before)] == window_before
    assert window.share_429() == 0
    assert window.busiest() <= LIMIT
    # Its first window is shared with the first task's last requests, yet it keeps the pace.
    assert 400 / (second.finished - second.start) >= 0.9 * LIMIT / WINDOW_S


@pytest.mark.parametrize("stagger_s", [0.3, 2.0, 7.0])
def test_tasks_joining_a_busy_window_keep_under_the_limit(stagger_s):
    window = Window()
    tasks = [Task(start=i * stagger_s, requests=400) for i in range(4)]
    simulate(tasks, window)
    # A task that joins a full window cannot know how old its requests are: a few may be too many.
    assert window.share_429() < 0.01
    span = max(t.finished for t in tasks)
    assert 1600 / span >= 0.85 * LIMIT / WINDOW_S


@pytest.mark.parametrize(
    "stagger_s, requests",
    [
        (0.7, 15),  # the deployment test's night: 60 sends in 4 batches, started by Celery
        (0.0, 45),  # the same tasks started at once, each with more to send
    ],
)
def test_tasks_starting_together_at_a_small_limit_do_not_overshoot_the_window(stagger_s, requests):
    # At 40 per 10 s the 2% headroom is less than one request: tasks that each see the young
    # window one request short of full all send into it (3 of 183 answered 429 once).
    window = Window(limit=40)
    tasks = [Task(start=i * stagger_s, requests=requests) for i in range(4)]
    simulate(tasks, window, latency=0.02, limit=40)
    assert window.share_429() < 0.01


@pytest.mark.parametrize("limit", [40, 100, 190])
def test_tasks_starting_together_with_answers_late_and_out_of_order_stay_under_1pct_429(limit):
    # A loaded machine: answers come after 50 to 600 ms, so the tasks' views are stale by
    # different amounts and their answers overtake each other.
    latency = random.Random(limit).uniform
    window = Window(limit=limit)
    tasks = [Task(start=0.0, requests=5 * limit) for _ in range(4)]
    simulate(tasks, window, latency=lambda: latency(0.05, 0.6), limit=limit)
    assert window.share_429() < 0.01
    span = max(t.finished for t in tasks)
    assert 4 * 5 * limit / span >= 0.8 * limit / WINDOW_S


def test_more_tasks_than_expected_still_stay_under_the_limit():
    # The pool was given more slots than the DAG's parallel_tasks says: the window still holds.
    window = Window()
    tasks = [Task(start=0.0, requests=300, parallel_tasks=2) for _ in range(4)]
    simulate(tasks, window)
    assert window.share_429() < 0.01


def test_without_headers_a_task_keeps_to_its_fair_share():
    clock = FakeClock()
    p = RatePacer(LIMIT, WINDOW_S, 4, clock=clock, sleep=clock.sleep)
    for _ in range(40):
        p.acquire()
        p.observe({}, clock.now)  # an answer without rate-limit headers teaches nothing
    fair = LIMIT * HEADROOM / WINDOW_S / 4
    assert clock.now == pytest.approx(40 / fair, rel=0.05)


def test_an_older_answer_arriving_late_does_not_replace_a_newer_one():
    clock = FakeClock()
    p = RatePacer(LIMIT, WINDOW_S, 1, clock=clock, sleep=clock.sleep)
    first = p.acquire()
    second = p.acquire()
    p.observe(headers(used=5), second)
    p.observe(headers(used=LIMIT), first)  # stale: would stop the task for a whole window
    clock.now += 0.2
    assert p.try_acquire() == 0.0


def test_a_full_window_holds_the_task_until_its_requests_leave_it():
    clock = FakeClock()
    p = RatePacer(LIMIT, WINDOW_S, 1, clock=clock, sleep=clock.sleep)
    sent = p.acquire()
    p.observe(headers(used=LIMIT), sent)  # someone else filled the window
    clock.now += 0.2
    assert p.try_acquire() > 0
    # Unknown when those arrived: assumed spread over the window, so they drain at the limit's
    # rate; a later answer corrects that either way.
    clock.now += 1.0
    assert p.try_acquire() == 0.0


def test_a_smaller_limit_in_the_headers_wins():
    window = Window(limit=100)
    tasks = [Task(start=0.0, requests=300)]  # configured for 190, HubSpot says 100
    simulate(tasks, window)
    assert window.busiest() <= 100
    assert window.share_429() < 0.01


def test_a_429_pauses_the_task_for_the_wait():
    clock = FakeClock()
    p = RatePacer(LIMIT, WINDOW_S, 1, clock=clock, sleep=clock.sleep)
    p.acquire()
    p.rate_limited(3.0)
    assert p.acquire() >= 3.0


def test_rejects_a_nonsense_limit():
    with pytest.raises(ValueError, match="rate limit must be positive"):
        RatePacer(0)


# -- against the sandbox: a real HTTP window, counted by the sandbox's own request log ------------


def test_a_lone_push_task_uses_the_whole_limit_in_its_first_window(sandbox, hubspot_connection):
    from hubspot_provider.hooks.hubspot import HubSpotHook, StatusChange

    # A 5 s window keeps the test short; the pacer takes it from HubSpot's headers.
    limit, window_s = 100, 5.0
    sandbox.configure(rate_limit_per_10s=limit, rate_window_ms=int(window_s * 1000), latency_ms=20)
    hubspot_connection(rate_limit_per_10s=limit)
    changes = [
        StatusChange(f"c{i}", f"lone.{i}@example.com", 1001, "SUBSCRIBED") for i in range(150)
    ]
    hook = HubSpotHook(parallel_tasks=4)  # told that 4 tasks share the limit, but runs alone
    try:
        results = list(hook.write_statuses(changes))
    finally:
        hook.close()
    assert len(results) == 150 and all(r.http_status == 200 and r.in_results for r in results)
    log = [r for r in sandbox.requests() if "/communication-preferences/" in r["path"]]
    assert all(r["status"] == 200 for r in log)
    # More than twice its fair share (a quarter) in the first window: the task took the budget
    # the headers showed unused. The >= 0.9 goal itself is the simulated test's above and the
    # benchmark's (BENCHMARKS.md): a wall-clock figure here would depend on the machine's load.
    first = log[0]["monotonic"]
    assert sum(1 for r in log if r["monotonic"] < first + window_s) > 0.5 * limit
