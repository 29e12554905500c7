"""The provider's operators against the sandbox over real HTTP: templated arguments in, JSON-able
wire results out, and HubSpot's final errors failing the task at once.

The provider's own tests: nothing here imports the pipeline.
"""

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from hubspot_provider.exceptions import HubSpotTransientError
from hubspot_provider.operators.hubspot import (
    HubSpotReadStatusesOperator,
    HubSpotWriteStatusesOperator,
)

OPTED_OUT = {
    "email": "out@x.com",
    "subscriptionId": 1001,
    "channel": "EMAIL",
    "status": "UNSUBSCRIBED",
    "timestamp": "2026-11-22T00:00:00Z",
}


def rendered(operator, **params):
    """The operator with its template fields rendered, as Airflow renders them before execute."""
    operator.render_template_fields({"params": params})
    return operator


def test_write_sets_the_templated_statuses_and_returns_json_able_results(
    sandbox, hubspot_connection
):
    operator = HubSpotWriteStatusesOperator(
        task_id="write",
        changes=[
            {
                "email": "{{ params.email }}",
                "subscription_id": 1001,
                "status_state": "UNSUBSCRIBED",
            },
            {
                "change_id": "mine",
                "email": "b@x.com",
                "subscription_id": 999,  # unknown to HubSpot: a result, not a failed task
                "status_state": "SUBSCRIBED",
            },
        ],
    )
    results = rendered(operator, email="a@x.com").execute({})
    assert json.loads(json.dumps(results)) == results
    first, second = ({r["change_id"]: r for r in results}[i] for i in ("0", "mine"))
    assert (first["change_id"], first["http_status"], first["call_status"]) == (
        "0",
        200,
        "COMPLETE",
    )
    assert first["in_results"] and first["error_category"] is None and first["sent_at"]
    assert second["http_status"] == 400
    assert "999" in second["error_message"] and not second["in_results"]
    assert sandbox.statuses()[("a@x.com", 1001, "EMAIL")]["status"] == "UNSUBSCRIBED"


def test_write_names_a_malformed_status_update_before_sending(sandbox, hubspot_connection):
    operator = HubSpotWriteStatusesOperator(
        task_id="write", changes=[{"email": "a@x.com", "state": "SUBSCRIBED"}]
    )
    with pytest.raises(ValueError, match=r"unknown fields \['state'\].*'status_state'"):
        operator.execute({})
    assert sandbox.requests() == []


@pytest.mark.parametrize(
    ("token", "script", "words"),
    [
        ("wrong-token", [], "refused the credentials.*bad or expired token"),
        (
            "sandbox-token",
            [{"status": 429, "policy": "DAILY", "times": 3}],
            "daily API limit is reached",
        ),
    ],
)
def test_write_fails_at_once_when_no_change_can_go_through(
    sandbox, hubspot_connection, token, script, words
):
    hubspot_connection(token=token)
    sandbox.script(script)
    operator = HubSpotWriteStatusesOperator(
        task_id="write",
        changes=[
            {"email": f"u{i}@x.com", "subscription_id": 1001, "status_state": "SUBSCRIBED"}
            for i in range(3)
        ],
    )
    with pytest.raises(AirflowFailException, match=words) as failure:
        operator.execute({})
    assert token not in str(failure.value)
    assert sandbox.statuses() == {}


def test_read_returns_each_contacts_statuses_as_given(sandbox, hubspot_connection):
    sandbox.seed_statuses([OPTED_OUT])
    sandbox.forget_contacts(["gone@x.com"])
    operator = HubSpotReadStatusesOperator(
        task_id="read", emails=["{{ params.email }}", "gone@x.com", "not-an-email"]
    )
    found = rendered(operator, email="Out@x.com").execute({})
    assert json.loads(json.dumps(found)) == found
    assert set(found) == {"Out@x.com", "gone@x.com", "not-an-email"}
    [opted_out] = [s for s in found["Out@x.com"]["statuses"] if s["subscription_id"] == 1001]
    assert (opted_out["status"], opted_out["timestamp"]) == (
        "UNSUBSCRIBED",
        "2026-11-22T00:00:00+00:00",
    )
    assert found["gone@x.com"]["known"] is False
    assert "VALIDATION_ERROR" in found["not-an-email"]["error"]


def test_read_takes_one_email_as_a_string(sandbox, hubspot_connection):
    found = HubSpotReadStatusesOperator(task_id="read", emails="a@x.com").execute({})
    assert list(found) == ["a@x.com"] and found["a@x.com"]["known"]


def test_a_read_hubspot_refuses_fails_at_once_and_an_unfinished_one_is_retried(
    sandbox, hubspot_connection, no_backoff
):
    operator = HubSpotReadStatusesOperator(task_id="read", emails=["a@x.com"])
    sandbox.script([{"status": 400, "message": "bad channel"}])
    with pytest.raises(AirflowFailException, match="a retry would get the same.*bad channel"):
        operator.execute({})
    sandbox.script([{"status": 200, "call_status": "PROCESSING"}])
    with pytest.raises(HubSpotTransientError, match="PROCESSING"):
        operator.execute({})
