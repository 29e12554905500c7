"""PushBatchOperator: the run's resubscribe_guard choice reaches the push."""

from datetime import UTC, datetime

import pytest

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
    rows_path = tmp_path / "batch-00000.parquet"
    write_table(batch_rows(1, changed_at=datetime(2026, 11, 20, 12, tzinfo=UTC)), rows_path)
    sandbox.seed_statuses([OPTED_OUT_LATER])
    batch = {
        "index": 0,
        "rows": 1,
        "rows_path": str(rows_path),
        "results_path": str(tmp_path / "results"),
        "resubscribe_guard": choice,
    }
    operator = PushBatchOperator(task_id="push", batch=batch)
    assert operator.execute({}) == {expected: 1}
