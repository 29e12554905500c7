"""runtime: what a task reads from Airflow's context, without running Airflow."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.consent_sync import pipeline, runtime
from include.consent_sync.validation import InvalidShareExceeded
from tests.conftest import INTERVAL_END, INTERVAL_START

PARAMS = {
    "lookback_days": 7,
    "resync": False,
    "emails": ["a@x.com"],
    "max_attempts": 5,
    "resubscribe_guard": None,
}


def context(**overrides):
    return {
        "run_id": "scheduled__2026-11-21T02:00:00+00:00",
        "params": PARAMS,
        "data_interval_start": INTERVAL_START,
        "data_interval_end": INTERVAL_END,
        "dag_run": SimpleNamespace(run_after=INTERVAL_END),
        **overrides,
    }


def test_the_window_is_the_runs_interval_and_params():
    assert runtime.window(context()) == pipeline.Window(
        dag_run_id="scheduled__2026-11-21T02:00:00+00:00",
        interval_start=INTERVAL_START,
        interval_end=INTERVAL_END,
        lookback_days=7,
        resync=False,
        emails=("a@x.com",),
    )


def test_a_manual_run_without_an_interval_covers_the_day_before_it():
    triggered = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    manual = context(
        data_interval_start=None,
        data_interval_end=None,
        dag_run=SimpleNamespace(run_after=triggered),
    )
    assert runtime.interval(manual) == (triggered - timedelta(days=1), triggered)


def test_run_facts_carry_the_run_and_its_max_attempts():
    facts = runtime.run_facts(context())
    assert (facts.dag_run_id, facts.interval_start, facts.interval_end, facts.max_attempts) == (
        "scheduled__2026-11-21T02:00:00+00:00",
        INTERVAL_START,
        INTERVAL_END,
        5,
    )
    assert facts.recorded_at.tzinfo is not None


@pytest.mark.parametrize("choice", [None, True, False])
def test_each_batch_carries_the_runs_guard_choice(choice):
    batches = [{"index": 0, "rows": 3}, {"index": 1, "rows": 2}]
    ctx = context(params={**PARAMS, "resubscribe_guard": choice})
    assert runtime.with_guard_choice(ctx, batches) == [
        {"index": 0, "rows": 3, "resubscribe_guard": choice},
        {"index": 1, "rows": 2, "resubscribe_guard": choice},
    ]


def test_the_run_folder_is_under_the_staging_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_VAR_CONSENT_SYNC_STAGING_ROOT", tmp_path.as_uri())
    folder = runtime.run_folder(context(run_id="manual__2026-11-25T09:30:00+00:00"))
    assert (
        str(folder) == f"{tmp_path.as_uri()}/hubspot_consent_sync/manual__2026-11-25T09_30_00_00_00"
    )


def test_a_tripped_gate_fails_without_retries_and_other_errors_pass_through():
    with pytest.raises(AirflowFailException, match="too many"):
        with runtime.gates_fail_fast():
            raise InvalidShareExceeded("too many invalid rows")
    with pytest.raises(AirflowFailException, match="max_rows"):
        with runtime.gates_fail_fast():
            raise pipeline.TooManyRows("exceed max_rows")
    with pytest.raises(ConnectionError):
        with runtime.gates_fail_fast():
            raise ConnectionError("warehouse unreachable: Airflow retries this")
