"""The HubSpot sandbox, driven over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from dev.hubspot_sandbox import SandboxServer

TOKEN = "sandbox-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sandbox():
    with SandboxServer(token=TOKEN) as server:
        yield server


def api(server: SandboxServer, suffix: str, version: str = "v4") -> str:
    return f"{server.url}/communication-preferences/{version}{suffix}"


def change(status="SUBSCRIBED", subscription_id=1001, **extra):
    return {"statusState": status, "channel": "EMAIL", "subscriptionId": subscription_id, **extra}


def write(server, email, body=None, headers=AUTH, version="v4"):
    url = api(server, "/statuses/" + quote(email, safe=""), version)
    return requests.post(url, json=change() if body is None else body, headers=headers, timeout=5)


def batch_write(server, inputs, headers=AUTH):
    url = api(server, "/statuses/batch/write")
    return requests.post(url, json={"inputs": inputs}, headers=headers, timeout=5)


def batch_input(email, status="SUBSCRIBED", subscription_id=1001, **extra):
    return {"subscriberIdString": email, **change(status, subscription_id, **extra)}


def read(server, email):
    url = api(server, "/statuses/" + quote(email, safe="") + "?channel=EMAIL")
    return requests.get(url, headers=AUTH, timeout=5)


def assert_hubspot_error(response, status, category):
    assert response.status_code == status
    body = response.json()
    assert body["status"] == "error"
    assert body["category"] == category
    assert body["message"]
    assert len(body["correlationId"]) == 36


# -- tokens and scopes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
def test_missing_or_unknown_token_is_401(sandbox, headers):
    assert_hubspot_error(write(sandbox, "a@x.com", headers=headers), 401, "INVALID_AUTHENTICATION")
    assert sandbox.statuses() == {}


def test_token_without_scopes_is_403_on_every_write(sandbox):
    no_scope = {"Authorization": "Bearer no-scope-token"}
    assert_hubspot_error(write(sandbox, "a@x.com", headers=no_scope), 403, "MISSING_SCOPES")
    response = batch_write(sandbox, [batch_input("a@x.com")], headers=no_scope)
    assert_hubspot_error(response, 403, "MISSING_SCOPES")
    assert sandbox.statuses() == {}


def test_batch_write_needs_the_batch_scope():
    with SandboxServer(token=TOKEN, batch_write_enabled=False) as server:
        response = batch_write(server, [batch_input("a@x.com")])
        assert_hubspot_error(response, 403, "MISSING_SCOPES")
        scopes = response.json()["errors"][0]["context"]["requiredGranularScopes"]
        assert scopes == ["communication_preferences.statuses.batch.write"]
        assert write(server, "a@x.com").status_code == 200


# -- single write -------------------------------------------------------------------------------


def test_single_write_stores_the_status_and_answers_the_envelope(sandbox):
    response = write(
        sandbox, "Ann@X.com", change(legalBasis="CONSENT_WITH_NOTICE", legalBasisExplanation="form")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE"
    assert (body["errors"], body["numErrors"], body["links"]) == ([], 0, {})
    assert {"requestedAt", "startedAt", "completedAt"} <= set(body)
    (item,) = body["results"]
    assert item["subscriberIdString"] == "Ann@X.com"
    assert (item["subscriptionId"], item["subscriptionName"]) == (1001, "Newsletter")
    assert (item["channel"], item["status"]) == ("EMAIL", "SUBSCRIBED")
    assert item["legalBasis"] == "CONSENT_WITH_NOTICE"
    assert item["legalBasisExplanation"] == "form"
    assert item["setStatusSuccessReason"] == "REQUESTED_CHANGE_OCCURRED"
    assert item["businessUnitId"] == 0
    assert item["timestamp"].endswith("Z")
    stored = sandbox.statuses()[("ann@x.com", 1001, "EMAIL")]
    assert stored["status"] == "SUBSCRIBED"
    assert stored["timestamp"] == item["timestamp"]


def test_success_reason_follows_the_stored_status(sandbox):
    def reason(status):
        return write(sandbox, "a@x.com", change(status)).json()["results"][0]

    first = reason("SUBSCRIBED")
    again = reason("SUBSCRIBED")
    assert again["setStatusSuccessReason"] == "NO_STATUS_CHANGE"
    assert again["timestamp"] == first["timestamp"]  # nothing changed, not even when
    assert reason("UNSUBSCRIBED")["setStatusSuccessReason"] == "REQUESTED_CHANGE_OCCURRED"
    assert reason("SUBSCRIBED")["setStatusSuccessReason"] == "RESUBSCRIBE_OCCURRED"
    assert reason("NOT_SPECIFIED")["setStatusSuccessReason"] == "REQUESTED_CHANGE_OCCURRED"


@pytest.mark.parametrize(
    "email",
    [
        "a+tag@x.com",
        "a/b@x.com",
        "a#b@x.com",
        "a?b@x.com",
        "a%b@x.com",
        "o'neil@x.com",
        "a&b@x.com",
    ],
)
def test_emails_with_reserved_characters_round_trip_when_percent_encoded(sandbox, email):
    response = write(sandbox, email)
    assert response.status_code == 200
    assert response.json()["results"][0]["subscriberIdString"] == email
    assert list(sandbox.statuses()) == [(email, 1001, "EMAIL")]
    statuses = read(sandbox, email).json()["statuses"]
    assert statuses[0]["status"] == "SUBSCRIBED"
    assert sandbox.requests()[0]["email"] == email


@pytest.mark.parametrize("email", ["a/b@x.com", "a?b@x.com", "a#b@x.com"])
def test_an_unencoded_reserved_character_does_not_reach_the_contact(sandbox, email):
    url = api(sandbox, "/statuses/" + email)
    response = requests.post(url, json=change(), headers=AUTH, timeout=5)
    assert response.status_code in (400, 404)
    assert sandbox.statuses() == {}


@pytest.mark.parametrize(
    "body",
    [
        change(status="OPTED_IN"),
        {**change(), "channel": "SMS"},
        change(subscription_id="1001"),
        change(subscription_id=1001.5),
        change(subscription_id=True),
        {"statusState": "SUBSCRIBED", "channel": "EMAIL"},
        change(legalBasis="BECAUSE"),
        change(subscription_id=9999),  # unknown subscription definition
        ["not", "an", "object"],
    ],
)
def test_invalid_single_writes_are_400_validation_errors(sandbox, body):
    assert_hubspot_error(write(sandbox, "a@x.com", body), 400, "VALIDATION_ERROR")
    assert sandbox.statuses() == {}


@pytest.mark.parametrize("email", ["no-at-sign.example.com", "two@@x.com", "sp ace@x.com"])
def test_implausible_emails_are_400(sandbox, email):
    assert_hubspot_error(write(sandbox, email), 400, "VALIDATION_ERROR")


def test_a_body_that_is_not_json_is_400(sandbox):
    url = api(sandbox, "/statuses/a%40x.com")
    response = requests.post(url, data=b"{nope", headers=AUTH, timeout=5)
    assert_hubspot_error(response, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("version", ["2026-03", "2026-09"])
def test_dated_versions_are_served(sandbox, version):
    assert write(sandbox, "a@x.com", version=version).status_code == 200


def test_unknown_version_and_route_are_404(sandbox):
    assert write(sandbox, "a@x.com", version="v3").status_code == 404
    response = requests.get(api(sandbox, "/nothing-here"), headers=AUTH, timeout=5)
    assert response.status_code == 404
    assert sandbox.statuses() == {}


def test_rejected_email_answers_its_error(sandbox):
    rule = {"status": 400, "category": "VALIDATION_ERROR", "message": "bounced contact"}
    sandbox.configure(reject_emails={"Bad@X.com": rule})
    response = write(sandbox, "bad@x.com")
    assert_hubspot_error(response, 400, "VALIDATION_ERROR")
    assert response.json()["message"] == "bounced contact"
    assert sandbox.statuses() == {}


# -- batch write --------------------------------------------------------------------------------


def test_batch_write_applies_every_input(sandbox):
    inputs = [batch_input("a@x.com"), batch_input("b@x.com", "UNSUBSCRIBED", 1002)]
    response = batch_write(sandbox, inputs)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["numErrors"], body["errors"]) == ("COMPLETE", 0, [])
    assert [
        (r["subscriberIdString"], r["subscriptionId"], r["status"]) for r in body["results"]
    ] == [
        ("a@x.com", 1001, "SUBSCRIBED"),
        ("b@x.com", 1002, "UNSUBSCRIBED"),
    ]
    assert all(r["setStatusSuccessReason"] == "REQUESTED_CHANGE_OCCURRED" for r in body["results"])
    assert set(sandbox.statuses()) == {("a@x.com", 1001, "EMAIL"), ("b@x.com", 1002, "EMAIL")}


@pytest.mark.parametrize("partial_status", [207, 200])
def test_batch_write_partial_failure_lists_item_errors(partial_status):
    reject = {"bad@x.com": {"status": 400, "category": "VALIDATION_ERROR", "message": "no"}}
    with SandboxServer(token=TOKEN, partial_status=partial_status, reject_emails=reject) as server:
        inputs = [
            batch_input("ok@x.com"),
            batch_input("bad@x.com"),
            batch_input("c@x.com", "SUBSCRIBED", 42),
        ]
        response = batch_write(server, inputs)
        assert response.status_code == partial_status
        body = response.json()
        assert body["numErrors"] == 2
        assert [r["subscriberIdString"] for r in body["results"]] == ["ok@x.com"]
        contexts = [e["context"] for e in body["errors"]]
        assert contexts == [
            {"subscriberIdString": ["bad@x.com"], "subscriptionId": ["1001"]},
            {"subscriberIdString": ["c@x.com"], "subscriptionId": ["42"]},
        ]
        assert all(e["category"] == "VALIDATION_ERROR" and e["message"] for e in body["errors"])
        assert list(server.statuses()) == [("ok@x.com", 1001, "EMAIL")]


def test_partial_status_can_change_live(sandbox):
    sandbox.configure(partial_status=200)
    assert batch_write(sandbox, [batch_input("a@x.com", subscription_id=5)]).status_code == 200


@pytest.mark.parametrize(
    "bad",
    [
        {"statusState": "SUBSCRIBED", "channel": "EMAIL", "subscriptionId": 1001},
        batch_input("not-an-email"),
        batch_input("b@x.com", "MAYBE"),
        batch_input("b@x.com", subscription_id="1001"),
        "just a string",
    ],
)
def test_one_malformed_input_refuses_the_whole_batch(sandbox, bad):
    response = batch_write(sandbox, [batch_input("a@x.com"), bad])
    assert_hubspot_error(response, 400, "VALIDATION_ERROR")
    assert "inputs[1]" in response.json()["message"]
    assert "inputs[0]" not in response.json()["message"]
    assert sandbox.statuses() == {}


def test_batch_write_without_inputs_is_400(sandbox):
    assert_hubspot_error(batch_write(sandbox, []), 400, "VALIDATION_ERROR")


# -- reads --------------------------------------------------------------------------------------


def test_single_read_lists_every_definition(sandbox):
    write(sandbox, "a@x.com", change("UNSUBSCRIBED", 1002))
    response = read(sandbox, "A@x.com")
    assert response.status_code == 200
    body = response.json()
    assert body["subscriberIdString"] == "A@x.com"
    assert body["statuses"] == body["results"]
    by_id = {s["subscriptionId"]: s for s in body["statuses"]}
    assert set(by_id) == {1001, 1002, 1003}
    assert by_id[1002]["status"] == "UNSUBSCRIBED"
    assert by_id[1002]["timestamp"].endswith("Z")
    assert by_id[1002]["subscriptionName"] == by_id[1002]["name"] == "Product updates"
    assert (by_id[1001]["status"], by_id[1001]["timestamp"]) == ("NOT_SPECIFIED", None)
    assert by_id[1001]["channel"] == "EMAIL"


def test_read_needs_the_email_channel(sandbox):
    url = api(sandbox, "/statuses/a%40x.com")
    assert_hubspot_error(requests.get(url, headers=AUTH, timeout=5), 400, "VALIDATION_ERROR")


def test_seeded_status_is_visible_in_reads(sandbox):
    sandbox.seed_statuses(
        [
            {
                "email": "a@x.com",
                "subscriptionId": 1001,
                "channel": "EMAIL",
                "status": "UNSUBSCRIBED",
                "timestamp": "2026-01-02T03:04:05.000Z",
            }
        ]
    )
    (first, *_) = read(sandbox, "a@x.com").json()["statuses"]
    assert (first["status"], first["timestamp"]) == ("UNSUBSCRIBED", "2026-01-02T03:04:05.000Z")
    resubscribe = write(sandbox, "a@x.com").json()["results"][0]
    assert resubscribe["setStatusSuccessReason"] == "RESUBSCRIBE_OCCURRED"


def test_batch_read_answers_per_email_statuses(sandbox):
    write(sandbox, "a@x.com")
    url = api(sandbox, "/statuses/batch/read?channel=EMAIL")
    response = requests.post(url, json={"inputs": ["a@x.com", "b@x.com"]}, headers=AUTH, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["numErrors"]) == ("COMPLETE", 0)
    assert [r["subscriberIdString"] for r in body["results"]] == ["a@x.com", "b@x.com"]
    assert body["results"][0]["statuses"][0]["status"] == "SUBSCRIBED"
    assert body["results"][0]["statuses"] == read(sandbox, "a@x.com").json()["statuses"]
    assert {s["status"] for s in body["results"][1]["statuses"]} == {"NOT_SPECIFIED"}


def test_batch_read_with_a_malformed_email_is_207(sandbox):
    url = api(sandbox, "/statuses/batch/read?channel=EMAIL")
    response = requests.post(url, json={"inputs": ["a@x.com", "nope"]}, headers=AUTH, timeout=5)
    assert response.status_code == 207
    body = response.json()
    assert [r["subscriberIdString"] for r in body["results"]] == ["a@x.com"]
    assert body["numErrors"] == 1
    assert body["errors"][0]["context"] == {"subscriberIdString": ["nope"]}


def test_definitions_are_listed(sandbox):
    response = requests.get(api(sandbox, "/definitions"), headers=AUTH, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["subscriptionDefinitions"] == body["results"]
    assert [(d["id"], d["name"]) for d in body["results"]] == [
        ("1001", "Newsletter"),
        ("1002", "Product updates"),
        ("1003", "Events"),
    ]


def test_definitions_are_configurable():
    with SandboxServer(token=TOKEN, definitions=[{"id": 7, "name": "Only"}]) as server:
        assert write(server, "a@x.com", change(subscription_id=7)).status_code == 200
        assert write(server, "a@x.com", change(subscription_id=1001)).status_code == 400


# -- pressure: rate limits ----------------------------------------------------------------------


def test_rolling_rate_limit_answers_429_then_recovers():
    with SandboxServer(token=TOKEN, rate_limit_per_10s=3, rate_window_ms=500) as server:
        answers = [write(server, "a@x.com") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        first, limited = answers[0], answers[3]
        assert first.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert first.headers["X-HubSpot-RateLimit-Remaining"] == "2"
        assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "500"
        assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        body = limited.json()
        assert body["status"] == "error"
        assert body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert body["correlationId"]
        time.sleep(0.55)
        assert write(server, "a@x.com").status_code == 200
        assert [r["status"] for r in server.requests()].count(429) == 1


def test_daily_limit_answers_429_daily():
    with SandboxServer(token=TOKEN, daily_limit=2) as server:
        answers = [write(server, "a@x.com") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[0].headers["X-HubSpot-RateLimit-Daily"] == "2"
        assert answers[0].headers["X-HubSpot-RateLimit-Daily-Remaining"] == "1"
        assert answers[2].json()["policyName"] == "DAILY"
        assert "daily" in answers[2].json()["message"]


def test_rate_limit_can_be_set_live(sandbox):
    assert "X-HubSpot-RateLimit-Max" not in write(sandbox, "a@x.com").headers
    sandbox.configure(rate_limit_per_10s=2)  # the request above already counts
    assert [write(sandbox, "a@x.com").status_code for _ in range(2)] == [200, 429]


# -- pressure: scripted answers -----------------------------------------------------------------


def test_scripted_429_with_retry_after(sandbox):
    sandbox.script([{"status": 429, "policy": "TEN_SECONDLY_ROLLING", "retry_after": 1}])
    response = write(sandbox, "a@x.com")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert sandbox.statuses() == {}
    assert write(sandbox, "a@x.com").status_code == 200


def test_scripted_daily_429_has_no_retry_after(sandbox):
    sandbox.script([{"status": 429, "policy": "DAILY"}])
    response = write(sandbox, "a@x.com")
    assert response.json()["policyName"] == "DAILY"
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize(
    ("answer", "category"),
    [
        ({"status": 503}, "SERVICE_UNAVAILABLE"),
        ({"status": 401}, "INVALID_AUTHENTICATION"),
        ({"status": 403}, "MISSING_SCOPES"),
        ({"status": 400, "category": "VALIDATION_ERROR", "message": "bad"}, "VALIDATION_ERROR"),
        ({"status": 404, "category": "OBJECT_NOT_FOUND", "message": "gone"}, "OBJECT_NOT_FOUND"),
        ({"status": 409, "category": "CONFLICT", "message": "clash"}, "CONFLICT"),
        ({"status": 422, "category": "INVALID_EMAIL", "message": "no"}, "INVALID_EMAIL"),
    ],
)
def test_scripted_error_answers(sandbox, answer, category):
    sandbox.script([answer])
    response = write(sandbox, "a@x.com")
    assert_hubspot_error(response, answer["status"], category)
    if "message" in answer:
        assert response.json()["message"] == answer["message"]
    assert sandbox.statuses() == {}
    assert sandbox.requests()[0]["reason"] == "scripted"


def test_scripted_200_with_errors_applies_nothing(sandbox):
    sandbox.script([{"status": 200, "errors": True}])
    response = write(sandbox, "a@x.com")
    assert response.status_code == 200
    body = response.json()
    assert (body["numErrors"], body["results"]) == (1, [])
    assert body["errors"][0]["context"] == {
        "subscriberIdString": ["a@x.com"],
        "subscriptionId": ["1001"],
    }
    assert sandbox.statuses() == {}


def test_scripted_times_repeats_then_answers_normally(sandbox):
    sandbox.script([{"status": 503, "times": 2}, {"status": 502}])
    assert [write(sandbox, "a@x.com").status_code for _ in range(4)] == [503, 503, 502, 200]


def test_scripted_match_waits_for_its_request(sandbox):
    sandbox.script(
        [
            {"status": 409, "match": {"email": "B@x.com"}},
            {"status": 422, "match": {"method": "POST", "path_contains": "batch/write"}},
        ]
    )
    assert write(sandbox, "a@x.com").status_code == 200
    assert read(sandbox, "b@x.com").status_code == 409
    assert write(sandbox, "b@x.com").status_code == 200
    assert batch_write(sandbox, [batch_input("c@x.com")]).status_code == 422
    assert batch_write(sandbox, [batch_input("c@x.com")]).status_code == 200


def test_scripted_match_on_email_inside_a_batch(sandbox):
    sandbox.script([{"status": 500, "match": {"email": "z@x.com"}}])
    assert batch_write(sandbox, [batch_input("a@x.com")]).status_code == 200
    assert batch_write(sandbox, [batch_input("a@x.com"), batch_input("z@x.com")]).status_code == 500


def test_scripted_delay_then_normal_answer(sandbox):
    sandbox.script([{"delay_ms": 300}])
    started = time.monotonic()
    assert write(sandbox, "a@x.com").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert sandbox.requests()[0]["latency_ms"] >= 300


def test_scripted_drop_closes_the_connection_without_applying(sandbox):
    sandbox.script([{"drop": True}])
    with pytest.raises(requests.ConnectionError):
        write(sandbox, "a@x.com")
    assert sandbox.statuses() == {}
    assert sandbox.requests()[0]["status"] == "dropped"
    assert write(sandbox, "a@x.com").status_code == 200


def test_malformed_script_is_refused(sandbox):
    with pytest.raises(ValueError):
        sandbox.script([{"stauts": 503}])


# -- pressure: random faults and latency --------------------------------------------------------


def test_latency_is_applied_to_every_api_answer():
    with SandboxServer(token=TOKEN, latency_ms=150) as server:
        started = time.monotonic()
        assert write(server, "a@x.com").status_code == 200
        assert time.monotonic() - started >= 0.15
        assert server.requests()[0]["latency_ms"] >= 150


def test_latency_is_slept_without_blocking_other_clients():
    with SandboxServer(token=TOKEN, latency_ms=100) as server:

        def client():
            with requests.Session() as session:
                for _ in range(5):
                    url = api(server, "/statuses/a%40x.com")
                    assert session.post(url, json=change(), headers=AUTH, timeout=5).ok

        started = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(server.requests()) == 40
        assert time.monotonic() - started < 2.0  # 8 clients x 5 x 100 ms would be 4 s serialised


def fault_sequence(seed):
    with SandboxServer(token=TOKEN, error_rate=0.5, seed=seed) as server:
        return [write(server, f"u{i}@x.com").status_code for i in range(20)], server.statuses()


def test_error_rate_is_seeded_and_faulty_writes_are_not_applied():
    statuses, stored = fault_sequence(7)
    assert statuses == fault_sequence(7)[0]
    assert set(statuses) <= {200, 500, 502, 503}
    assert 200 in statuses and len(set(statuses)) > 1
    assert len(stored) == statuses.count(200)


def test_random_error_body_is_hubspot_like():
    with SandboxServer(token=TOKEN, error_rate=1.0, seed=1) as server:
        response = write(server, "a@x.com")
        assert response.status_code in (500, 502, 503)
        assert response.json()["correlationId"]
        assert server.requests()[0]["reason"] == "random_fault"


def test_drop_rate_drops_connections():
    with SandboxServer(token=TOKEN, drop_rate=1.0) as server:
        with pytest.raises(requests.ConnectionError):
            write(server, "a@x.com")
        assert server.statuses() == {}
        server.configure(drop_rate=0.0)
        assert write(server, "a@x.com").status_code == 200


def test_keep_alive_serves_many_requests_on_one_connection(sandbox):
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/communication-preferences/v4/definitions", headers=AUTH)
            response = connection.getresponse()
            assert response.status == 200
            assert int(response.getheader("Content-Length")) == len(response.read())
        connection.request("GET", "/communication-preferences/v4/definitions")  # 401 keeps it too
        response = connection.getresponse()
        assert response.status == 401
        assert int(response.getheader("Content-Length")) == len(response.read())
    finally:
        connection.close()


def test_configure_refuses_unknown_or_bad_settings(sandbox):
    with pytest.raises(ValueError):
        sandbox.configure(rate_limit=5)
    with pytest.raises(ValueError):
        sandbox.configure(error_rate=2)


def test_reset_forgets_statuses_scripts_requests_and_windows(sandbox):
    sandbox.configure(rate_limit_per_10s=1)
    write(sandbox, "a@x.com")
    sandbox.script([{"status": 503}])
    sandbox.reset()
    assert (sandbox.statuses(), sandbox.requests()) == ({}, [])
    assert write(sandbox, "a@x.com").status_code == 200


# -- control over HTTP --------------------------------------------------------------------------


def test_http_control_api(sandbox):
    control = sandbox.url + "/_sandbox"
    assert requests.get(control + "/health", timeout=5).json() == {"status": "ok"}
    config = requests.post(control + "/config", json={"rate_limit_per_10s": 1}, timeout=5).json()
    assert config["rate_limit_per_10s"] == 1
    assert requests.get(control + "/config", timeout=5).json()["rate_limit_per_10s"] == 1
    assert requests.post(control + "/config", json={"nope": 1}, timeout=5).status_code == 400

    requests.post(control + "/script", json={"answers": [{"status": 503}]}, timeout=5)
    assert write(sandbox, "a@x.com").status_code == 503
    for _ in range(5):  # control requests are never rate limited nor recorded
        assert requests.get(control + "/requests", timeout=5).status_code == 200
    assert write(sandbox, "a@x.com").status_code == 429

    requests.post(control + "/config", json={"rate_limit_per_10s": None}, timeout=5)
    seeded = [
        {
            "email": "S@x.com",
            "subscriptionId": 1002,
            "channel": "EMAIL",
            "status": "UNSUBSCRIBED",
            "timestamp": "2026-02-03T04:05:06.000Z",
        }
    ]
    assert requests.post(control + "/statuses", json=seeded, timeout=5).status_code == 200
    listed = requests.get(control + "/statuses", timeout=5).json()
    assert listed == [
        {
            "email": "s@x.com",
            "subscriptionId": 1002,
            "channel": "EMAIL",
            "status": "UNSUBSCRIBED",
            "legalBasis": None,
            "legalBasisExplanation": None,
            "source": "Subscription preferences page",
            "timestamp": "2026-02-03T04:05:06.000Z",
        }
    ]

    recorded = requests.get(control + "/requests", timeout=5).json()
    assert [r["status"] for r in recorded["requests"]] == [503, 429]
    assert recorded["next"] == 2
    later = requests.get(control + "/requests?since=1", timeout=5).json()
    assert [r["index"] for r in later["requests"]] == [1]
    assert {"monotonic", "wall_time", "method", "path", "email", "latency_ms"} <= set(
        later["requests"][0]
    )

    assert requests.post(control + "/reset", timeout=5).status_code == 200
    assert requests.get(control + "/statuses", timeout=5).json() == []
    assert requests.get(control + "/nowhere", timeout=5).status_code == 404


# -- command line -------------------------------------------------------------------------------


def test_cli_prints_its_url_serves_and_exits_on_sigterm(tmp_path):
    url_file = tmp_path / "sandbox.url"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dev.hubspot_sandbox",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--rate-limit-per-10s",
            "190",
            "--latency-ms",
            "1",
            "--seed",
            "7",
            "--url-file",
            str(url_file),
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not url_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = url_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        response = requests.get(
            url + "/communication-preferences/v4/definitions", headers=AUTH, timeout=5
        )
        assert response.status_code == 200
        assert response.headers["X-HubSpot-RateLimit-Max"] == "190"
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)
        assert process.returncode == 0
        assert stdout.strip() == url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- reads for reconciliation, in the shapes of HubSpot's v4 spec -------------------------------

# Required by the spec, and never null in HubSpot's answers for a status that was set.
PUBLIC_STATUS = {"subscriberIdString", "subscriptionId", "channel", "status", "source", "timestamp"}
WIDE_STATUS = {"subscriberIdString", "wideStatusType", "status", "channel", "timestamp"}
STANDARD_ERROR = {"status", "category", "message", "context", "errors", "links"}


def assert_envelope(body, num_errors=0):
    assert body["status"] == "COMPLETE"
    assert {"startedAt", "completedAt", "results"} <= set(body)
    assert body["numErrors"] == len(body["errors"]) == num_errors
    for error in body["errors"]:
        assert STANDARD_ERROR <= set(error)
        assert error["status"] == "error" and error["message"] and error["category"]


def assert_set_status(item, email, subscription_id, status):
    assert PUBLIC_STATUS <= set(item)
    assert [item[k] for k in ("subscriberIdString", "subscriptionId", "channel", "status")] == [
        email,
        subscription_id,
        "EMAIL",
        status,
    ]
    assert item["source"] and item["timestamp"].endswith("Z")


def assert_wide_status(item, email):
    assert WIDE_STATUS <= set(item)
    assert (item["subscriberIdString"], item["status"]) == (email, "UNSUBSCRIBED")
    assert (item["wideStatusType"], item["channel"]) == ("PORTAL_WIDE", "EMAIL")
    assert item["timestamp"].endswith("Z")


def batch_read(server, emails, route="/statuses/batch/read", version="v4", headers=AUTH):
    url = api(server, f"{route}?channel=EMAIL", version)
    return requests.post(url, json={"inputs": emails}, headers=headers, timeout=5)


def batch_read_wide(server, emails, **kwargs):
    return batch_read(server, emails, route="/statuses/batch/unsubscribe-all/read", **kwargs)


def read_wide(server, email, version="v4"):
    url = api(
        server, "/statuses/" + quote(email, safe="") + "/unsubscribe-all?channel=EMAIL", version
    )
    return requests.get(url, headers=AUTH, timeout=5)


def unsubscribe_all(server, email, query="?channel=EMAIL&verbose=true", headers=AUTH, version="v4"):
    url = api(server, "/statuses/" + quote(email, safe="") + "/unsubscribe-all" + query, version)
    return requests.post(url, headers=headers, timeout=5)


def by_subscription(statuses):
    return {s["subscriptionId"]: s for s in statuses}


def test_batch_read_answers_every_set_status_in_the_spec_shape(sandbox):
    write(sandbox, "a@x.com", change("SUBSCRIBED", 1001, legalBasis="CONSENT_WITH_NOTICE"))
    sandbox.seed_statuses([{"email": "b@x.com", "subscriptionId": 1002, "status": "UNSUBSCRIBED"}])
    response = batch_read(sandbox, ["a@x.com", "B@x.com"])
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body)
    assert [set(r) for r in body["results"]] == [{"subscriberIdString", "statuses"}] * 2
    a_statuses, b_statuses = (by_subscription(r["statuses"]) for r in body["results"])
    assert_set_status(a_statuses[1001], "a@x.com", 1001, "SUBSCRIBED")
    assert a_statuses[1001]["legalBasis"] == "CONSENT_WITH_NOTICE"
    assert_set_status(b_statuses[1002], "B@x.com", 1002, "UNSUBSCRIBED")
    assert b_statuses[1002]["source"] == "Subscription preferences page"


def test_batch_read_answers_unknown_and_invalid_contacts_as_207_errors(sandbox):
    write(sandbox, "gone@x.com")
    sandbox.forget_contacts(["Gone@x.com"])
    response = batch_read(sandbox, ["a@x.com", "gone@x.com", "nope"])
    assert response.status_code == 207
    body = response.json()
    assert_envelope(body, num_errors=2)
    assert [r["subscriberIdString"] for r in body["results"]] == ["a@x.com"]
    assert [(e["category"], e["context"]) for e in body["errors"]] == [
        ("OBJECT_NOT_FOUND", {"subscriberIdString": ["gone@x.com"]}),
        ("VALIDATION_ERROR", {"subscriberIdString": ["nope"]}),
    ]


def test_a_forgotten_contact_reads_404_until_a_write_creates_it_again(sandbox):
    write(sandbox, "a@x.com", change("UNSUBSCRIBED", 1002))
    sandbox.forget_contacts(["a@x.com"])
    assert sandbox.statuses() == {}
    assert_hubspot_error(read(sandbox, "a@x.com"), 404, "OBJECT_NOT_FOUND")
    assert_hubspot_error(read_wide(sandbox, "a@x.com"), 404, "OBJECT_NOT_FOUND")
    assert write(sandbox, "a@x.com", change("SUBSCRIBED", 1001)).status_code == 200
    statuses = by_subscription(read(sandbox, "a@x.com").json()["statuses"])
    assert statuses[1001]["status"] == "SUBSCRIBED"
    assert (statuses[1002]["status"], statuses[1002]["timestamp"]) == ("NOT_SPECIFIED", None)


def test_unsubscribe_all_opts_the_contact_out_of_every_subscription(sandbox):
    write(sandbox, "a@x.com", change("SUBSCRIBED", 1001))
    earlier = "2026-01-02T03:04:05.000Z"
    sandbox.seed_statuses(
        [
            {
                "email": "a@x.com",
                "subscriptionId": 1002,
                "status": "UNSUBSCRIBED",
                "timestamp": earlier,
            }
        ]
    )
    response = unsubscribe_all(sandbox, "A@x.com")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body)
    changed = by_subscription(body["results"])
    assert set(changed) == {1001, 1003}  # 1002 was already UNSUBSCRIBED
    for subscription_id, item in changed.items():
        assert_set_status(item, "A@x.com", subscription_id, "UNSUBSCRIBED")
        assert item["setStatusSuccessReason"] == "UNSUBSCRIBE_FROM_ALL_OCCURRED"
    statuses = by_subscription(read(sandbox, "a@x.com").json()["statuses"])
    assert {s["status"] for s in statuses.values()} == {"UNSUBSCRIBED"}
    assert statuses[1002]["timestamp"] == earlier
    assert statuses[1001]["timestamp"] == changed[1001]["timestamp"]
    (wide,) = read_wide(sandbox, "a@x.com").json()["results"]
    assert_wide_status(wide, "a@x.com")
    assert wide["timestamp"] == changed[1001]["timestamp"]


def test_unsubscribe_all_again_changes_nothing_and_answers_empty_without_verbose(sandbox):
    first = unsubscribe_all(sandbox, "a@x.com", "?channel=EMAIL")
    assert (first.status_code, first.json()["results"]) == (200, [])
    held = (sandbox.statuses(), sandbox.wide_statuses())
    assert len(held[0]) == 3 and list(held[1]) == [("a@x.com", "EMAIL")]
    time.sleep(0.01)
    again = unsubscribe_all(sandbox, "a@x.com")
    assert (again.status_code, again.json()["results"]) == (200, [])
    assert (sandbox.statuses(), sandbox.wide_statuses()) == held


def test_a_subscribed_write_ends_the_opt_out_of_all(sandbox):
    unsubscribe_all(sandbox, "a@x.com")
    item = write(sandbox, "a@x.com", change("SUBSCRIBED", 1001)).json()["results"][0]
    assert item["setStatusSuccessReason"] == "RESUBSCRIBE_OCCURRED"
    assert read_wide(sandbox, "a@x.com").json()["results"] == []
    statuses = by_subscription(read(sandbox, "a@x.com").json()["statuses"])
    assert [statuses[i]["status"] for i in (1001, 1002, 1003)] == [
        "SUBSCRIBED",
        "UNSUBSCRIBED",
        "UNSUBSCRIBED",
    ]


def test_an_unsubscribed_write_keeps_the_opt_out_of_all(sandbox):
    unsubscribe_all(sandbox, "a@x.com")
    write(sandbox, "a@x.com", change("NOT_SPECIFIED", 1001))
    assert len(read_wide(sandbox, "a@x.com").json()["results"]) == 1


@pytest.mark.parametrize(
    ("query", "headers", "status", "category"),
    [
        ("", AUTH, 400, "VALIDATION_ERROR"),
        ("?channel=SMS", AUTH, 400, "VALIDATION_ERROR"),
        ("?channel=EMAIL", {"Authorization": "Bearer no-scope-token"}, 403, "MISSING_SCOPES"),
        ("?channel=EMAIL", {"Authorization": "Bearer wrong"}, 401, "INVALID_AUTHENTICATION"),
    ],
)
def test_unsubscribe_all_refusals_change_nothing(sandbox, query, headers, status, category):
    assert_hubspot_error(unsubscribe_all(sandbox, "a@x.com", query, headers), status, category)
    assert (sandbox.statuses(), sandbox.wide_statuses()) == ({}, {})


def test_unsubscribe_all_refuses_invalid_and_rejected_emails(sandbox):
    assert_hubspot_error(unsubscribe_all(sandbox, "nope"), 400, "VALIDATION_ERROR")
    sandbox.configure(reject_emails={"bad@x.com": {"status": 400, "message": "bounced"}})
    response = unsubscribe_all(sandbox, "bad@x.com")
    assert_hubspot_error(response, 400, "VALIDATION_ERROR")
    assert response.json()["message"] == "bounced"
    assert (sandbox.statuses(), sandbox.wide_statuses()) == ({}, {})


def test_wide_read_of_a_contact_not_opted_out_is_empty(sandbox):
    write(sandbox, "a@x.com", change("UNSUBSCRIBED", 1001))  # one subscription is not all
    response = read_wide(sandbox, "a@x.com")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body)
    assert (body["results"], body["subscriberIdString"], body["wideStatuses"]) == (
        [],
        "a@x.com",
        [],
    )
    assert_hubspot_error(read_wide(sandbox, "nope"), 400, "VALIDATION_ERROR")
    url = api(sandbox, "/statuses/a%40x.com/unsubscribe-all")
    assert_hubspot_error(requests.get(url, headers=AUTH, timeout=5), 400, "VALIDATION_ERROR")


def test_batch_wide_read_answers_per_contact_and_207_for_unknown_or_invalid(sandbox):
    unsubscribe_all(sandbox, "out@x.com")
    sandbox.forget_contacts(["gone@x.com"])
    response = batch_read_wide(sandbox, ["out@x.com", "in@x.com", "gone@x.com", "nope"])
    assert response.status_code == 207
    body = response.json()
    assert_envelope(body, num_errors=2)
    assert [set(r) for r in body["results"]] == [{"subscriberIdString", "wideStatuses"}] * 2
    (out, stays) = body["results"]
    (wide,) = out["wideStatuses"]
    assert_wide_status(wide, "out@x.com")
    assert (stays["subscriberIdString"], stays["wideStatuses"]) == ("in@x.com", [])
    assert [e["category"] for e in body["errors"]] == ["OBJECT_NOT_FOUND", "VALIDATION_ERROR"]
    assert batch_read_wide(sandbox, ["out@x.com"]).status_code == 200
    assert_hubspot_error(batch_read_wide(sandbox, []), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("version", ["2026-03", "2026-09"])
def test_dated_versions_serve_the_reconciliation_reads(sandbox, version):
    assert unsubscribe_all(sandbox, "a@x.com", version=version).status_code == 200
    assert len(read_wide(sandbox, "a@x.com", version).json()["results"]) == 1
    assert batch_read_wide(sandbox, ["a@x.com"], version=version).status_code == 200
    assert batch_read(sandbox, ["a@x.com"], version=version).status_code == 200
    assert batch_read_wide(sandbox, ["a@x.com"], version="v3").status_code == 404


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", "/statuses/batch/unsubscribe-all/read"),
        ("POST", "/statuses/batch/unsubscribe-all/write"),
        ("POST", "/statuses/a%40x.com/other"),
        ("POST", "/statuses/a/b@x.com/unsubscribe-all"),  # an unencoded "/" in the email
    ],
)
def test_near_miss_opt_out_routes_are_404(sandbox, method, suffix):
    url = api(sandbox, suffix + "?channel=EMAIL")
    response = requests.request(method, url, json={"inputs": ["a@x.com"]}, headers=AUTH, timeout=5)
    assert response.status_code == 404
    assert (sandbox.statuses(), sandbox.wide_statuses()) == ({}, {})


@pytest.mark.parametrize(
    ("headers", "status", "category"),
    [
        ({"Authorization": "Bearer no-scope-token"}, 403, "MISSING_SCOPES"),
        ({"Authorization": "Bearer wrong"}, 401, "INVALID_AUTHENTICATION"),
    ],
)
def test_reads_need_a_known_token_with_scopes(sandbox, headers, status, category):
    emails = ["a@x.com"]
    assert_hubspot_error(batch_read(sandbox, emails, headers=headers), status, category)
    assert_hubspot_error(batch_read_wide(sandbox, emails, headers=headers), status, category)
    url = api(sandbox, "/statuses/a%40x.com/unsubscribe-all?channel=EMAIL")
    assert_hubspot_error(requests.get(url, headers=headers, timeout=5), status, category)


def test_reads_count_toward_both_rate_limits():
    with SandboxServer(token=TOKEN, rate_limit_per_10s=3) as server:
        answers = [batch_read(server, ["a@x.com"]), read_wide(server, "a@x.com")]
        answers += [batch_read_wide(server, ["a@x.com"]), batch_read_wide(server, ["a@x.com"])]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[3].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    with SandboxServer(token=TOKEN, daily_limit=2) as server:
        assert read_wide(server, "a@x.com").status_code == 200
        assert batch_read(server, ["a@x.com"]).status_code == 200
        limited = unsubscribe_all(server, "a@x.com")
        assert limited.json()["policyName"] == "DAILY"
        assert server.wide_statuses() == {}


def test_scripted_answers_and_faults_reach_the_opt_out_routes(sandbox):
    sandbox.script(
        [
            {"status": 503, "match": {"path_contains": "/unsubscribe-all"}, "times": 2},
            {"status": 500, "match": {"email": "z@x.com"}},
            {"drop": True},
        ]
    )
    assert unsubscribe_all(sandbox, "a@x.com").status_code == 503
    assert read_wide(sandbox, "a@x.com").status_code == 503
    assert batch_read_wide(sandbox, ["a@x.com", "z@x.com"]).status_code == 500
    with pytest.raises(requests.ConnectionError):
        unsubscribe_all(sandbox, "a@x.com")
    assert (sandbox.statuses(), sandbox.wide_statuses()) == ({}, {})
    sandbox.configure(error_rate=1.0, seed=3)
    assert unsubscribe_all(sandbox, "a@x.com").status_code in (500, 502, 503)
    assert sandbox.wide_statuses() == {}
    assert [r["reason"] for r in sandbox.requests()][-1] == "random_fault"


def test_scripted_207_on_a_batch_read_carries_a_standard_error(sandbox):
    sandbox.script([{"status": 207, "errors": True}])
    response = batch_read(sandbox, ["a@x.com"])
    assert response.status_code == 207
    assert_envelope(response.json(), num_errors=1)
    assert response.json()["results"] == []


# -- out-of-band changes: HubSpot's side changed behind the pipeline's back ---------------------


def test_a_status_set_inside_hubspot_reads_back_with_its_timestamp_and_source(sandbox):
    write(sandbox, "a@x.com", change("SUBSCRIBED", 1001))
    sandbox.seed_statuses(
        [
            {
                "email": "a@x.com",
                "subscriptionId": "1001",
                "status": "UNSUBSCRIBED",
                "timestamp": "2099-01-02T03:04:05+01:00",
                "source": "Unsubscribe link in email",
            }
        ]
    )
    status = by_subscription(batch_read(sandbox, ["a@x.com"]).json()["results"][0]["statuses"])[
        1001
    ]
    assert_set_status(status, "a@x.com", 1001, "UNSUBSCRIBED")
    assert (status["timestamp"], status["source"]) == (
        "2099-01-02T02:04:05.000Z",
        "Unsubscribe link in email",
    )


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"subscriptionId": 1001, "status": "UNSUBSCRIBED"}, "email: missing"),
        ({"email": "nope", "subscriptionId": 1001, "status": "SUBSCRIBED"}, "email: not a valid"),
        ({"email": "a@x.com", "subscriptionId": 42, "status": "SUBSCRIBED"}, "subscriptionId: 42"),
        ({"email": "a@x.com", "subscriptionId": 1001, "status": "OPTED_OUT"}, "status: must be"),
        (
            {"email": "a@x.com", "subscriptionId": 1001, "status": "SUBSCRIBED", "source": None},
            "source",
        ),
        (
            {
                "email": "a@x.com",
                "subscriptionId": 1001,
                "status": "SUBSCRIBED",
                "timestamp": "2026-01-02T03:04:05",
            },
            "timestamp",
        ),
        (
            {
                "email": "a@x.com",
                "subscriptionId": 1001,
                "status": "SUBSCRIBED",
                "timestamp": "yesterday",
            },
            "timestamp",
        ),
        (
            {"email": "a@x.com", "subscriptionId": 1001, "status": "SUBSCRIBED", "channel": "SMS"},
            "channel",
        ),
        ("a@x.com", "must be a JSON object"),
    ],
)
def test_a_bad_status_to_set_is_refused_naming_it_and_nothing_changes(sandbox, record, problem):
    good = {"email": "ok@x.com", "subscriptionId": 1001, "status": "SUBSCRIBED"}
    with pytest.raises(ValueError, match=r"statuses\[1\]: ") as raised:
        sandbox.seed_statuses([good, record])
    assert problem in str(raised.value)
    assert sandbox.statuses() == {}


def test_a_dropped_status_reads_as_never_set(sandbox):
    write(sandbox, "a@x.com", change("SUBSCRIBED", 1001))
    write(sandbox, "a@x.com", change("UNSUBSCRIBED", 1002))
    sandbox.drop_statuses([{"email": "A@x.com", "subscriptionId": 1001}])
    statuses = by_subscription(batch_read(sandbox, ["a@x.com"]).json()["results"][0]["statuses"])
    assert [statuses[1001][k] for k in ("status", "source", "timestamp")] == [
        "NOT_SPECIFIED",
        None,
        None,
    ]
    assert statuses[1002]["status"] == "UNSUBSCRIBED"


def test_dropping_a_status_not_held_drops_nothing(sandbox):
    write(sandbox, "a@x.com")
    held = sandbox.statuses()
    with pytest.raises(ValueError, match=r"no stored status to drop for \('b@x.com', 1001"):
        sandbox.drop_statuses(
            [
                {"email": "a@x.com", "subscriptionId": 1001},
                {"email": "b@x.com", "subscriptionId": 1001},
            ]
        )
    with pytest.raises(ValueError, match=r"statuses\[0\]: subscriptionId: must be an integer"):
        sandbox.drop_statuses([{"email": "a@x.com", "subscriptionId": "first"}])
    assert sandbox.statuses() == held


def test_forgetting_a_contact_forgets_its_statuses_and_opt_out_only(sandbox):
    write(sandbox, "a@x.com")
    write(sandbox, "b@x.com")
    unsubscribe_all(sandbox, "a@x.com")
    sandbox.forget_contacts(["A@X.com"])
    assert {key[0] for key in sandbox.statuses()} == {"b@x.com"}
    assert sandbox.wide_statuses() == {}
    with pytest.raises(ValueError, match=r"emails\[1\]: not a valid email address"):
        sandbox.forget_contacts(["b@x.com", "nope"])
    assert {key[0] for key in sandbox.statuses()} == {"b@x.com"}


def test_a_wide_opt_out_set_inside_hubspot_leaves_subscription_statuses(sandbox):
    write(sandbox, "a@x.com", change("SUBSCRIBED", 1001))
    held = sandbox.statuses()
    sandbox.set_wide_statuses(
        [{"email": "A@x.com", "status": "UNSUBSCRIBED", "timestamp": "2099-05-06T07:08:09Z"}]
    )
    assert sandbox.statuses() == held
    (wide,) = read_wide(sandbox, "A@x.com").json()["results"]
    assert_wide_status(wide, "A@x.com")
    assert wide["timestamp"] == "2099-05-06T07:08:09.000Z"
    sandbox.set_wide_statuses([{"email": "a@x.com", "status": "SUBSCRIBED"}])
    assert read_wide(sandbox, "a@x.com").json()["results"] == []
    with pytest.raises(ValueError, match=r"wide_statuses\[0\]: status: must be one of"):
        sandbox.set_wide_statuses([{"email": "a@x.com", "status": "OUT"}])
    with pytest.raises(ValueError, match=r"wide_statuses\[0\]: email: missing"):
        sandbox.set_wide_statuses([{"status": "UNSUBSCRIBED"}])
    assert sandbox.wide_statuses() == {}


def test_reset_forgets_opt_outs_and_forgotten_contacts(sandbox):
    unsubscribe_all(sandbox, "a@x.com")
    sandbox.forget_contacts(["b@x.com"])
    sandbox.reset()
    assert (sandbox.statuses(), sandbox.wide_statuses()) == ({}, {})
    assert batch_read(sandbox, ["b@x.com"]).status_code == 200


def test_http_control_of_out_of_band_changes(sandbox):
    control = sandbox.url + "/_sandbox"
    write(sandbox, "a@x.com", change("SUBSCRIBED", 1001))
    write(sandbox, "a@x.com", change("SUBSCRIBED", 1002))

    dropped = requests.post(
        control + "/statuses/drop",
        json={"statuses": [{"email": "a@x.com", "subscriptionId": 1001, "channel": "EMAIL"}]},
        timeout=5,
    )
    assert [(s["email"], s["subscriptionId"]) for s in dropped.json()] == [("a@x.com", 1002)]
    missing = requests.post(
        control + "/statuses/drop", json=[{"email": "a@x.com", "subscriptionId": 1001}], timeout=5
    )
    assert missing.status_code == 400
    assert "no stored status to drop" in missing.json()["error"]

    opted_out = requests.post(
        control + "/wide-statuses",
        json={
            "wideStatuses": [
                {"email": "a@x.com", "status": "UNSUBSCRIBED", "timestamp": "2099-01-01T00:00:00Z"}
            ]
        },
        timeout=5,
    )
    expected = [
        {
            "email": "a@x.com",
            "channel": "EMAIL",
            "status": "UNSUBSCRIBED",
            "timestamp": "2099-01-01T00:00:00.000Z",
        }
    ]
    assert opted_out.json() == expected
    assert requests.get(control + "/wide-statuses", timeout=5).json() == expected
    bad = requests.post(control + "/wide-statuses", json=[{"email": "a@x.com"}], timeout=5)
    assert bad.status_code == 400
    assert bad.json()["error"] == "wide_statuses[0]: status: missing"

    forgotten = requests.post(control + "/contacts/forget", json={"emails": ["a@x.com"]}, timeout=5)
    assert forgotten.json() == []
    assert requests.get(control + "/wide-statuses", timeout=5).json() == []
    assert read(sandbox, "a@x.com").status_code == 404
    not_a_list = requests.post(control + "/contacts/forget", json={"email": "a@x.com"}, timeout=5)
    assert not_a_list.status_code == 400
    assert "'emails'" in not_a_list.json()["error"]
    assert [r["path"] for r in sandbox.requests()][-1].endswith("/statuses/a%40x.com")


def test_cli_help_documents_the_out_of_band_controls():
    result = subprocess.run(
        [sys.executable, "-m", "dev.hubspot_sandbox", "--help"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for control in ("/statuses/drop", "/contacts/forget", "/wide-statuses", "/unsubscribe-all"):
        assert control in result.stdout
