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
