"""Which run may start: the wait_for_turn gate's decision."""

import pytest

from include.consent_sync.turns import holders, reason_to_wait

ME = "backfill__2026-11-10T02:00:00+00:00"
NIGHTLY = "scheduled__2026-11-26T02:00:00+00:00"


def states(gate, load):
    return {"wait_for_turn": gate, "load_results": load}


def always(state):
    return lambda run_id: state


def test_alone_it_is_our_turn():
    assert reason_to_wait(ME, None, {ME: states("running", None)}, always("running")) is None


def test_an_earlier_running_run_goes_first():
    earlier = "backfill__2026-11-09T02:00:00+00:00"
    reason = reason_to_wait(ME, earlier, {}, always("running"))
    assert reason == f"run {earlier} has an earlier logical date and is still running"


@pytest.mark.parametrize("load", [None, "scheduled", "queued", "running", "up_for_retry"])
def test_a_run_between_its_gate_and_its_load_holds_the_turn(load):
    task_states = {ME: states("running", None), NIGHTLY: states("success", load)}
    reason = reason_to_wait(ME, None, task_states, always("running"))
    assert reason == f"run {NIGHTLY} is between its prepare_ledger and its load_results"


@pytest.mark.parametrize("load", ["success", "failed", "upstream_failed", "skipped"])
def test_a_run_whose_load_finished_releases_the_turn(load):
    task_states = {ME: states("running", None), NIGHTLY: states("success", load)}
    assert reason_to_wait(ME, None, task_states, always("running")) is None


def test_a_holder_whose_run_was_stopped_holds_nothing():
    task_states = {NIGHTLY: states("success", "running")}
    assert reason_to_wait(ME, None, task_states, always("failed")) is None


def test_later_runs_still_waiting_do_not_block():
    task_states = {NIGHTLY: states("up_for_reschedule", None), ME: states("running", None)}
    assert reason_to_wait(ME, None, task_states, always("running")) is None


def test_a_run_never_waits_for_itself():
    # A run cleared after it had passed the gate: its own old states must not block it.
    assert holders({ME: states("success", "running")}, ME) == []


def test_holders_are_listed_in_a_stable_order():
    task_states = {"b": states("success", None), "a": states("success", "queued")}
    assert holders(task_states, ME) == ["a", "b"]
