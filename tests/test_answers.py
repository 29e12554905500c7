"""What a HubSpot write result means for the ledger (answers.outcome_of), without a network."""

import pytest

from hubspot_provider.hooks.hubspot import StatusWriteResult
from include.consent_sync.answers import ledger_facts, outcome_of
from include.consent_sync.contract import Outcome, result_schema


def result(**facts):
    return StatusWriteResult("c1", **{"http_status": 200, "attempts": 1, **facts})


@pytest.mark.parametrize(
    ("facts", "outcome"),
    [
        ({"call_status": "COMPLETE", "in_results": True}, Outcome.SYNCED),
        ({"http_status": None, "error_category": "TRANSIENT"}, Outcome.FAILED),
        ({"http_status": 502}, Outcome.FAILED),
        ({"http_status": 400, "error_category": "VALIDATION_ERROR"}, Outcome.REJECTED),
        ({"http_status": 404}, Outcome.REJECTED),
        ({"call_status": "COMPLETE", "error_status": "error"}, Outcome.REJECTED),
        ({"call_status": "COMPLETE", "error_status": "400"}, Outcome.REJECTED),
        ({"call_status": "COMPLETE", "error_status": "503"}, Outcome.FAILED),
        ({"http_status": 207, "call_status": "COMPLETE", "in_results": True}, Outcome.SYNCED),
        # HubSpot has not finished: never SYNCED, a later run sends the same state again.
        ({"call_status": "PENDING", "in_results": True}, Outcome.FAILED),
        ({"call_status": "PROCESSING"}, Outcome.FAILED),
        ({"call_status": "CANCELED"}, Outcome.FAILED),
        ({"call_status": None, "in_results": True}, Outcome.FAILED),
        # COMPLETE but silent about this change.
        ({"call_status": "COMPLETE", "in_results": False}, Outcome.FAILED),
    ],
)
def test_outcome_of_a_write(facts, outcome):
    assert outcome_of(result(**facts)) is outcome


def test_ledger_facts_are_the_staged_result_columns():
    facts = ledger_facts(result(error_category="X", correlation_id="abc"))
    assert set(facts) == set(result_schema().names) - {"change_id", "outcome"}
    assert (facts["error_category"], facts["correlation_id"]) == ("X", "abc")
