"""HubSpotHook against the sandbox over real HTTP: the wire, retries and every answer's parsing.

The provider's own tests: nothing here imports the pipeline. What a result means for the ledger
is tested in test_answers.py.
"""

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from hubspot_provider.exceptions import (
    HubSpotAuthError,
    HubSpotDailyLimitError,
    HubSpotError,
    HubSpotRejectedError,
    HubSpotScopeError,
    HubSpotTransientError,
)
from hubspot_provider.hooks.hubspot import (
    HubSpotHook,
    HubSpotSettings,
    StatusChange,
)

TRICKY_EMAILS = [
    "ops+newsletter@example.com",
    "a/b@example.com",
    "hash#tag@example.com",
    "what?now@example.com",
    "percent%41sign@example.com",
    "o'brien@example.ie",
    "tom&jerry=x@example.com",
]


def change(
    change_id="c1", email="jane@example.com", state="SUBSCRIBED", subscription_id=1001, **kw
):
    return StatusChange(change_id, email, subscription_id, state, **kw)


def done(result):
    """The wire facts of a write HubSpot finished and applied."""
    return (
        result.call_status == "COMPLETE"
        and result.in_results
        and result.error_category is None
        and 200 <= result.http_status < 300
    )


def api_requests(sandbox):
    return [r for r in sandbox.requests() if "/communication-preferences/" in r["path"]]


def test_emails_are_percent_encoded_with_no_safe_characters_and_the_token_is_bearer(
    sandbox, hubspot_connection
):
    hook = HubSpotHook()
    for n, email in enumerate(TRICKY_EMAILS):
        result = hook.write_status(change(f"c{n}", email))
        assert done(result), (email, result)
    stored = {key[0] for key in sandbox.statuses()}
    assert stored == set(TRICKY_EMAILS)
    paths = [r["path"] for r in api_requests(sandbox)]
    assert all(quote(e, safe="") in p for e, p in zip(TRICKY_EMAILS, paths, strict=True))
    assert hook.get_conn().headers["Authorization"] == "Bearer sandbox-token"
    assert hook.get_conn().auth is None


def test_success_records_hubspots_reason(sandbox, hubspot_connection):
    hook = HubSpotHook()
    first = hook.write_status(change("c1", state="UNSUBSCRIBED"))
    again = hook.write_status(change("c2", state="UNSUBSCRIBED"))
    back = hook.write_status(
        change(
            "c3",
            state="SUBSCRIBED",
            legal_basis="CONSENT_WITH_NOTICE",
            legal_basis_explanation="Signed up at the fair",
        )
    )
    assert (first.http_status, first.attempts) == (200, 1)
    assert again.set_status_success_reason == "NO_STATUS_CHANGE"
    assert back.set_status_success_reason == "RESUBSCRIBE_OCCURRED"
    stored = sandbox.statuses()[("jane@example.com", 1001, "EMAIL")]
    assert stored["status"] == "SUBSCRIBED" and stored["legalBasis"] == "CONSENT_WITH_NOTICE"


def test_a_200_with_errors_is_never_synced(sandbox, hubspot_connection):
    sandbox.script([{"status": 200, "errors": True}])
    result = HubSpotHook().write_status(change())
    assert result.http_status == 200 and result.error_status == "error"
    assert result.error_category == "VALIDATION_ERROR" and result.error_message
    assert not result.in_results
    assert sandbox.statuses() == {}


def test_429_ten_secondly_waits_and_retries_without_counting_an_attempt(
    sandbox, hubspot_connection
):
    sandbox.script(
        [{"status": 429, "policy": "TEN_SECONDLY_ROLLING", "retry_after": 0, "times": 3}]
    )
    result = HubSpotHook().write_status(change())
    assert done(result) and result.attempts == 1
    assert [r["status"] for r in api_requests(sandbox)] == [429, 429, 429, 200]


def test_429_daily_stops(sandbox, hubspot_connection):
    sandbox.script([{"status": 429, "policy": "DAILY"}])
    with pytest.raises(HubSpotDailyLimitError) as error:
        HubSpotHook().write_status(change())
    assert error.value.http_status == 429 and isinstance(error.value, HubSpotError)


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 500}, {"drop": True}])
def test_transient_failures_back_off_and_retry(sandbox, hubspot_connection, no_backoff, fault):
    sandbox.script([{**fault, "times": 2}])
    result = HubSpotHook().write_status(change())
    assert done(result) and result.attempts == 3


def test_a_slow_answer_times_out_and_is_retried(sandbox, hubspot_connection, no_backoff):
    hubspot_connection(timeout=0.3)
    sandbox.script([{"delay_ms": 1500}])
    result = HubSpotHook().write_status(change())
    assert done(result) and result.attempts == 2


def test_attempts_run_out_as_failed(sandbox, hubspot_connection, no_backoff):
    sandbox.script([{"status": 502, "times": 5}])
    result = HubSpotHook().write_status(change())
    assert (result.http_status, result.attempts, result.error_category) == (502, 3, "TRANSIENT")
    assert "gave up after 3 attempts" in result.error_message


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_4xx_is_rejected_with_hubspots_reason(sandbox, hubspot_connection, status):
    sandbox.script(
        [{"status": status, "category": "VALIDATION_ERROR", "message": "nope, not that"}]
    )
    result = HubSpotHook().write_status(change())
    assert result.http_status == status and not result.in_results
    assert result.error_category == "VALIDATION_ERROR" and result.error_message == "nope, not that"
    assert result.correlation_id


def test_unknown_subscription_is_rejected_by_hubspot(sandbox, hubspot_connection):
    result = HubSpotHook().write_status(change(subscription_id=999))
    assert result.http_status == 400 and "999" in result.error_message


@pytest.mark.parametrize(
    ("token", "words", "error_class"),
    [
        ("wrong-token", "bad or expired token", HubSpotAuthError),
        ("no-scope-token", "lacks a required scope", HubSpotScopeError),
    ],
)
def test_auth_refusals_stop_everything_at_once(
    sandbox, hubspot_connection, token, words, error_class
):
    hubspot_connection(token=token, max_in_flight=2)
    changes = [change(f"c{i}", f"u{i}@x.com") for i in range(50)]
    with pytest.raises(error_class, match=words) as error:
        list(HubSpotHook().write_statuses(changes))
    assert token not in str(error.value)
    assert isinstance(error.value, HubSpotAuthError)
    assert len(api_requests(sandbox)) <= 2  # not one request per row


def test_batch_mode_maps_items_and_splits_a_refused_batch(sandbox, hubspot_connection):
    hubspot_connection(write_mode="batch", batch_size=4)
    sandbox.configure(
        reject_emails={
            "refused@x.com": {
                "status": 400,
                "category": "VALIDATION_ERROR",
                "message": "contact is blocked",
            }
        }
    )
    changes = [change(f"c{i}", f"u{i}@x.com") for i in range(7)]
    changes.append(change("refused", "refused@x.com"))
    changes.append(change("broken", "broken@x.com", state="MAYBE"))  # refuses its whole batch
    results = {r.change_id: r for r in HubSpotHook().write_statuses(changes)}
    assert set(results) == {c.change_id for c in changes}
    assert results["refused"].error_status == "error"
    assert "blocked" in results["refused"].error_message
    assert results["broken"].http_status == 400 and not results["broken"].in_results
    assert all(done(results[f"c{i}"]) for i in range(7))
    assert {k[0] for k in sandbox.statuses()} == {f"u{i}@x.com" for i in range(7)}


@pytest.mark.parametrize("partial_status", [200, 207])
def test_batch_partial_answers_either_way(sandbox, hubspot_connection, partial_status):
    hubspot_connection(write_mode="batch")
    sandbox.configure(partial_status=partial_status)
    results = list(
        HubSpotHook().write_statuses(
            [change("ok", "ok@x.com"), change("bad", "bad@x.com", subscription_id=999)]
        )
    )
    by_id = {r.change_id: r for r in results}
    assert by_id["ok"].in_results
    assert by_id["ok"].error_category is None and by_id["ok"].call_status == "COMPLETE"
    assert by_id["ok"].http_status == partial_status
    assert by_id["bad"].error_status is not None and not by_id["bad"].in_results


def test_the_api_version_is_a_setting(sandbox, hubspot_connection):
    hubspot_connection(api_version="2026-09")
    assert done(HubSpotHook().write_status(change()))
    assert "/communication-preferences/2026-09/statuses/" in api_requests(sandbox)[0]["path"]


@pytest.mark.parametrize("write_mode", ["single", "batch"])
@pytest.mark.parametrize("call_status", ["PENDING", "PROCESSING", "CANCELED"])
def test_an_unfinished_answer_is_never_taken_as_done(
    sandbox, hubspot_connection, write_mode, call_status
):
    hubspot_connection(write_mode=write_mode)
    sandbox.script([{"status": 200, "call_status": call_status}])
    [result] = HubSpotHook().write_statuses([change()])
    assert (result.http_status, result.call_status) == (200, call_status)
    assert result.error_category == "INCOMPLETE" and call_status in result.error_message
    assert not done(result)


OPTED_OUT = {
    "email": "a@x.com",
    "subscriptionId": 1001,
    "channel": "EMAIL",
    "status": "UNSUBSCRIBED",
    "timestamp": "2026-11-22T00:00:00Z",
}


@pytest.mark.parametrize("batch_scope", [True, False])
def test_read_statuses_per_contact(sandbox, hubspot_connection, batch_scope):
    if not batch_scope:  # no batch read scope: the hook reads one contact at a time
        sandbox.script([{"status": 403, "match": {"path_contains": "/batch/read"}}])
    sandbox.seed_statuses([OPTED_OUT])
    found = HubSpotHook().read_statuses(["A@x.com", "nobody@x.com"])
    assert set(found) == {"A@x.com", "nobody@x.com"}
    [opted_out] = [s for s in found["A@x.com"].statuses if s.subscription_id == 1001]
    assert (opted_out.status, opted_out.channel) == ("UNSUBSCRIBED", "EMAIL")
    assert opted_out.timestamp == datetime(2026, 11, 22, tzinfo=UTC)
    assert all(s.status != "UNSUBSCRIBED" for s in found["nobody@x.com"].statuses)
    assert found["A@x.com"].error is None


@pytest.mark.parametrize("batch_scope", [True, False])
def test_read_unsubscribe_all_and_unknown_contacts(sandbox, hubspot_connection, batch_scope):
    if not batch_scope:
        sandbox.script([{"status": 403, "match": {"path_contains": "/batch/unsubscribe-all/read"}}])
    sandbox.set_wide_statuses(
        [{"email": "out@x.com", "status": "UNSUBSCRIBED", "timestamp": "2026-11-22T08:00:00Z"}]
    )
    sandbox.forget_contacts(["gone@x.com"])
    found = HubSpotHook().read_unsubscribe_all(["Out@x.com", "in@x.com", "gone@x.com"])
    [wide] = found["Out@x.com"].wide_statuses
    assert (wide.status, wide.channel) == ("UNSUBSCRIBED", "EMAIL")
    assert wide.wide_status_type in ("PORTAL_WIDE", "BUSINESS_UNIT_WIDE")
    assert wide.timestamp == datetime(2026, 11, 22, 8, tzinfo=UTC)
    assert found["in@x.com"].wide_statuses == [] and found["in@x.com"].known
    assert not found["gone@x.com"].known and found["gone@x.com"].error is None
    paths = [r["path"] for r in api_requests(sandbox)]
    assert all("/unsubscribe-all" in p for p in paths)


@pytest.mark.parametrize("batch_scope", [True, False])
def test_a_contact_hubspot_does_not_know_is_not_an_error(sandbox, hubspot_connection, batch_scope):
    if not batch_scope:
        sandbox.script([{"status": 403, "match": {"path_contains": "/batch/read"}}])
    sandbox.forget_contacts(["gone@x.com"])
    found = HubSpotHook().read_statuses(["gone@x.com", "here@x.com"])
    assert (found["gone@x.com"].known, found["gone@x.com"].statuses) == (False, [])
    assert found["here@x.com"].known and found["here@x.com"].statuses


def test_read_statuses_reports_a_contact_hubspot_refused(sandbox, hubspot_connection):
    found = HubSpotHook().read_statuses(["a@x.com", "not-an-email"])
    assert found["a@x.com"].error is None
    assert "VALIDATION_ERROR" in found["not-an-email"].error
    assert found["not-an-email"].statuses == []


@pytest.mark.parametrize(
    ("script", "error_class", "words"),
    [
        ({"status": 200, "call_status": "PROCESSING"}, HubSpotTransientError, "PROCESSING"),
        ({"status": 503, "times": 3}, HubSpotTransientError, "gave up after 3 attempts"),
        ({"status": 400, "message": "bad channel"}, HubSpotRejectedError, "bad channel"),
        ({"status": 401}, HubSpotAuthError, "bad or expired token"),
        ({"status": 429, "policy": "DAILY"}, HubSpotDailyLimitError, "daily"),
    ],
)
def test_a_read_that_cannot_be_trusted_raises(
    sandbox, hubspot_connection, no_backoff, script, error_class, words
):
    sandbox.script([script])
    with pytest.raises(error_class, match=words):
        HubSpotHook().read_statuses(["a@x.com"])


@pytest.mark.parametrize(
    ("token", "ok", "words"),
    [("sandbox-token", True, "token accepted"), ("wrong-token", False, "bad or expired token")],
)
def test_test_connection_checks_the_token_with_a_read(
    sandbox, hubspot_connection, token, ok, words
):
    hubspot_connection(token=token)
    accepted, message = HubSpotHook().test_connection()
    assert accepted is ok and words in message and token not in message
    assert [r["method"] for r in api_requests(sandbox)] == ["GET"]
    assert sandbox.statuses() == {}


def test_success_carries_hubspots_timestamp(sandbox, hubspot_connection):
    result = HubSpotHook().write_status(change())
    stored = sandbox.statuses()[("jane@example.com", 1001, "EMAIL")]
    assert result.status_timestamp is not None
    assert (
        result.status_timestamp.isoformat().replace("+00:00", "Z")[:19] == stored["timestamp"][:19]
    )


def test_settings_errors_name_the_problem():
    with pytest.raises(ValueError, match="write_mode='bulk'"):
        HubSpotSettings.from_extras({"write_mode": "bulk"})
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        HubSpotSettings.from_extras({"batch_size": 0})
    with pytest.raises(ValueError, match="rate_limit_per_10s='190/10s': expected a number"):
        HubSpotSettings.from_extras({"rate_limit_per_10s": "190/10s"})
    with pytest.raises(ValueError, match="timeout=None: expected a number"):
        HubSpotSettings.from_extras({"timeout": None})


def test_own_extras_are_not_sent_as_headers(sandbox, hubspot_connection):
    hubspot_connection(rate_limit_per_10s=190, write_mode="single", batch_size=10)
    headers = HubSpotHook().get_conn().headers
    assert not {"rate_limit_per_10s", "write_mode", "batch_size", "max_attempts"} & set(headers)


def test_the_provider_imports_nothing_from_the_pipeline():
    import ast
    from pathlib import Path

    provider = Path(__file__).parents[1] / "plugins" / "hubspot_provider"
    imported = set()
    for source in provider.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
    assert not imported & {"include", "dev", "tests"}, imported
