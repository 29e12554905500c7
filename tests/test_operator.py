"""PushBatchOperator: the run's resubscribe_guard choice reaches the push; an auth refusal fails
the task at once (the provider's HubSpotBaseOperator)."""

from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.consent_sync.push_operator import PushBatchOperator
from include.consent_sync.staging import write_table
from tests.test_push import batch_rows

OPTED_OUT_LATER = {
    "email": "user0@example.com",
    "subscriptionId": 1001,
    "channel": "EMAIL",
    "status": "UNSUBSCRIBED",
    "timestamp": "2026-11-20T18:00:00Z",
}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [(None, "SKIPPED_HUBSPOT_NEWER"), (True, "SKIPPED_HUBSPOT_NEWER"), (False, "SYNCED")],
)
def test_the_batch_carries_the_runs_guard_choice(
    sandbox, hubspot_connection, tmp_path, choice, expected
):
    sandbox.seed_statuses([OPTED_OUT_LATER])
    operator = PushBatchOperator(task_id="push", batch=one_row_batch(tmp_path, choice))
    assert operator.execute({}) == {expected: 1}


def test_an_auth_refusal_fails_the_task_without_retries(sandbox, hubspot_connection, tmp_path):
    hubspot_connection(token="wrong-token")
    operator = PushBatchOperator(task_id="push", batch=one_row_batch(tmp_path, False))
    with pytest.raises(AirflowFailException, match="refused the credentials.*401"):
        operator.execute({})
    assert sandbox.statuses() == {}


def one_row_batch(tmp_path, guard: bool | None) -> dict:
    rows_path = tmp_path / "batch-00000.parquet"
    write_table(batch_rows(1, changed_at=datetime(2026, 11, 20, 12, tzinfo=UTC)), rows_path)
    return {
        "index": 0,
        "rows": 1,
        "rows_path": str(rows_path),
        "results_path": str(tmp_path / "results"),
        "resubscribe_guard": guard,
    }
