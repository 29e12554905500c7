"""HubSpotHook against the sandbox over real HTTP: the wire, retries and every answer's mapping."""

from urllib.parse import quote

import pytest

from hubspot_provider.hooks.hubspot import (
    DailyLimitReached,
    HubSpotAuthError,
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


def api_requests(sandbox):
    return [r for r in sandbox.requests() if "/communication-preferences/" in r["path"]]


def test_emails_are_percent_encoded_with_no_safe_characters_and_the_token_is_bearer(
    sandbox, hubspot_connection
):
    hook = HubSpotHook()
    for n, email in enumerate(TRICKY_EMAILS):
        result = hook.write_status(change(f"c{n}", email))
        assert result.outcome == "SYNCED", (email, result)
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
    assert result.outcome == "REJECTED" and result.http_status == 200
    assert result.error_message
    assert sandbox.statuses() == {}


def test_429_ten_secondly_waits_and_retries_without_counting_an_attempt(
    sandbox, hubspot_connection
):
    sandbox.script(
        [{"status": 429, "policy": "TEN_SECONDLY_ROLLING", "retry_after": 0, "times": 3}]
    )
    result = HubSpotHook().write_status(change())
    assert result.outcome == "SYNCED" and result.attempts == 1
    assert [r["status"] for r in api_requests(sandbox)] == [429, 429, 429, 200]


def test_429_daily_stops(sandbox, hubspot_connection):
    sandbox.script([{"status": 429, "policy": "DAILY"}])
    with pytest.raises(DailyLimitReached):
        HubSpotHook().write_status(change())


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 500}, {"drop": True}])
def test_transient_failures_back_off_and_retry(sandbox, hubspot_connection, no_backoff, fault):
    sandbox.script([{**fault, "times": 2}])
    result = HubSpotHook().write_status(change())
    assert result.outcome == "SYNCED" and result.attempts == 3


def test_a_slow_answer_times_out_and_is_retried(sandbox, hubspot_connection, no_backoff):
    hubspot_connection(timeout=0.3)
    sandbox.script([{"delay_ms": 1500}])
    result = HubSpotHook().write_status(change())
    assert result.outcome == "SYNCED" and result.attempts == 2


def test_attempts_run_out_as_failed(sandbox, hubspot_connection, no_backoff):
    sandbox.script([{"status": 502, "times": 5}])
    result = HubSpotHook().write_status(change())
    assert result.outcome == "FAILED" and result.attempts == 3 and result.http_status == 502
    assert "gave up after 3 attempts" in result.error_message


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_4xx_is_rejected_with_hubspots_reason(sandbox, hubspot_connection, status):
    sandbox.script(
        [{"status": status, "category": "VALIDATION_ERROR", "message": "nope, not that"}]
    )
    result = HubSpotHook().write_status(change())
    assert (result.outcome, result.http_status) == ("REJECTED", status)
    assert result.error_category == "VALIDATION_ERROR" and result.error_message == "nope, not that"
    assert result.correlation_id


def test_unknown_subscription_is_rejected_by_hubspot(sandbox, hubspot_connection):
    result = HubSpotHook().write_status(change(subscription_id=999))
    assert result.outcome == "REJECTED" and result.http_status == 400


@pytest.mark.parametrize(
    ("token", "words"),
    [("wrong-token", "bad or expired token"), ("no-scope-token", "lacks a required scope")],
)
def test_auth_refusals_stop_everything_at_once(sandbox, hubspot_connection, token, words):
    hubspot_connection(token=token, max_in_flight=2)
    changes = [change(f"c{i}", f"u{i}@x.com") for i in range(50)]
    with pytest.raises(HubSpotAuthError, match=words) as error:
        list(HubSpotHook().write_statuses(changes))
    assert token not in str(error.value)
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
    assert (
        results["refused"].outcome == "REJECTED" and "blocked" in results["refused"].error_message
    )
    assert results["broken"].outcome == "REJECTED" and results["broken"].http_status == 400
    assert all(results[f"c{i}"].outcome == "SYNCED" for i in range(7))
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
    assert {r.change_id: r.outcome for r in results} == {"ok": "SYNCED", "bad": "REJECTED"}


def test_the_api_version_is_a_setting(sandbox, hubspot_connection):
    hubspot_connection(api_version="2026-09")
    assert HubSpotHook().write_status(change()).outcome == "SYNCED"
    assert "/communication-preferences/2026-09/statuses/" in api_requests(sandbox)[0]["path"]


def test_read_statuses_batch(sandbox, hubspot_connection):
    sandbox.seed_statuses(
        [
            {
                "email": "a@x.com",
                "subscriptionId": 1001,
                "channel": "EMAIL",
                "status": "UNSUBSCRIBED",
                "timestamp": "2026-11-22T00:00:00Z",
            }
        ]
    )
    found = HubSpotHook().read_statuses(["A@x.com", "nobody@x.com"])
    statuses = {
        s["subscriptionId"]: s for s in found["a@x.com"] if s.get("status") == "UNSUBSCRIBED"
    }
    assert str(next(iter(statuses))) == "1001"
    assert found["nobody@x.com"] == [] or all(
        s.get("status") != "UNSUBSCRIBED" for s in found["nobody@x.com"]
    )


def test_settings_errors_name_the_problem():
    with pytest.raises(ValueError, match="write_mode='bulk'"):
        HubSpotSettings.from_extras({"write_mode": "bulk"})
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        HubSpotSettings.from_extras({"batch_size": 0})


def test_own_extras_are_not_sent_as_headers(sandbox, hubspot_connection):
    hubspot_connection(rate_limit_per_10s=190, write_mode="single", batch_size=10)
    headers = HubSpotHook().get_conn().headers
    assert not {"rate_limit_per_10s", "write_mode", "batch_size", "max_attempts"} & set(headers)
