"""The Communication Preferences API itself: routing, auth, pressure, then the endpoint's work.

One lock guards every piece of state; it is never held while sleeping (latency and scripted
delays are slept by the caller or between the two locked phases).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from dev.hubspot_sandbox.bodies import (
    definition_json,
    envelope,
    error_body,
    item_error,
    missing_scope_body,
    rate_limit_body,
)
from dev.hubspot_sandbox.faults import ROLLING_POLICY, AnswerScript, RandomFaults, RateLimiter
from dev.hubspot_sandbox.reads import STATUSES, WIDE_STATUSES, Reads, invalid_email_answer
from dev.hubspot_sandbox.settings import BATCH_WRITE_SCOPE, READ_WRITE_SCOPE, SandboxSettings
from dev.hubspot_sandbox.state import ConsentStore, StatusKey, WideKey, utc_iso
from dev.hubspot_sandbox.validation import (
    email_problems,
    inputs_of,
    is_plausible_email,
    raise_for_problems,
    status_key_problems,
    status_record_problems,
    wide_record_problems,
    write_problems,
)

JsonBody = dict[str, Any] | None


@dataclass(frozen=True)
class ApiRequest:
    method: str
    target: str  # the raw request target, still percent-encoded: path and query
    token: str | None
    body: bytes
    arrived: float = field(default_factory=time.monotonic)
    arrived_wall: float = field(default_factory=time.time)


@dataclass
class Answer:
    status: int | None  # None: close the connection without answering
    body: JsonBody
    headers: dict[str, str]
    delay_s: float
    record: dict[str, Any]


@dataclass(frozen=True)
class Route:
    # write_one, read_one, batch_write, batch_read, definitions, and for opting out of all
    # email: unsubscribe_all, read_wide_one, batch_read_wide
    name: str
    email: str | None = None


def resolve_route(method: str, path: str, versions: tuple[str, ...]) -> Route | None:
    """Match ``/communication-preferences/{version}/...`` on the raw path.

    The email segment is decoded only after splitting, so an unencoded ``/`` in an email makes
    another (unknown) route rather than reaching the same contact.
    """
    parts = path.split("/")
    if len(parts) < 4 or parts[0] or parts[1] != "communication-preferences":
        return None
    if parts[2] not in versions:
        return None
    rest = parts[3:]
    if rest == ["definitions"] and method == "GET":
        return Route("definitions")
    if rest[:2] == ["statuses", "batch"]:
        batch_routes = {
            "read": "batch_read",
            "write": "batch_write",
            "unsubscribe-all/read": "batch_read_wide",
        }
        name = batch_routes.get("/".join(rest[2:]))
        return Route(name) if name and method == "POST" else None
    if len(rest) not in (2, 3) or rest[0] != "statuses" or not rest[1]:
        return None
    email = unquote(rest[1])
    if len(rest) == 2:
        return {"POST": Route("write_one", email), "GET": Route("read_one", email)}.get(method)
    if rest[2] == "unsubscribe-all":
        return {"POST": Route("unsubscribe_all", email), "GET": Route("read_wide_one", email)}.get(
            method
        )
    return None


def _rejection(settings: SandboxSettings, email: str) -> tuple[int, JsonBody] | None:
    """The error a write for an email in ``reject_emails`` answers."""
    rule = settings.reject_emails.get(email.lower())
    if rule is None:
        return None
    status = rule.get("status", 400)
    return status, error_body(status, rule.get("message"), rule.get("category"))


def _parse_json(body: bytes) -> tuple[Any, bool]:
    if not body:
        return None, True
    try:
        return json.loads(body), True
    except ValueError:
        return None, False


def _emails_of(route: Route, payload: Any) -> list[str]:
    if route.email is not None:
        return [route.email]
    inputs = inputs_of(payload) or []
    if route.name == "batch_write":
        return [str(i.get("subscriberIdString")) for i in inputs if isinstance(i, dict)]
    return [str(i) for i in inputs] if route.name in ("batch_read", "batch_read_wide") else []


class SandboxApi:
    def __init__(self, settings: SandboxSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._store = ConsentStore()
        self._limiter = RateLimiter()
        self._script = AnswerScript()
        self._faults = RandomFaults(settings.seed)
        self._records: list[dict[str, Any]] = []

    # -- the API ---------------------------------------------------------------------------------

    def answer(self, request: ApiRequest) -> Answer:
        """Decide one API request's answer; the caller sleeps ``delay_s`` and sends it.

        In order: unknown route 404, unknown token 401 (neither counted nor scripted), then the
        next matching scripted answer is taken (its ``delay_ms`` slept outside the lock), the
        request is counted in the rate windows, a scripted answer wins over the limits, the
        daily/rolling 429s, seeded random drops and 5xx, and finally the endpoint itself. Only
        the endpoint writes, so no faulty answer ever applies a change.
        """
        path, _, query = request.target.partition("?")
        payload, json_ok = _parse_json(request.body)
        record: dict[str, Any] = {
            "monotonic": request.arrived,
            "wall_time": request.arrived_wall,
            "method": request.method,
            "path": path,
            "email": None,
            "items": None,
            "reason": None,
        }
        with self._lock:
            settings = self._settings
            route = resolve_route(request.method, path, settings.versions)
            if route is None:
                body = error_body(404, f"No route for {request.method} {path}")
                return Answer(404, body, {}, self._faults.latency_s(settings), record)
            emails = _emails_of(route, payload)
            record["email"] = route.email
            if route.name.startswith("batch_"):
                record["items"] = len(inputs_of(payload) or [])
            scopes = settings.scopes_for(request.token)
            if scopes is None:
                return Answer(401, error_body(401), {}, self._faults.latency_s(settings), record)
            scripted = self._script.take(request.method, path, emails)
        if scripted and scripted.get("delay_ms"):
            time.sleep(scripted["delay_ms"] / 1000)
        with self._lock:
            settings = self._settings
            policy, headers = self._limiter.admit(request.token, time.monotonic(), settings)
            latency = self._faults.latency_s(settings)
            if scripted and (
                scripted.get("drop")
                or scripted.get("status", 0) >= 400
                or scripted.get("errors")
                or scripted.get("call_status")
            ):
                record["reason"] = "scripted"
                status, body = self._scripted(scripted, headers, emails, payload)
                return Answer(status, body, headers, latency, record)
            if policy:
                record["reason"] = f"rate_limit:{policy}"
                return Answer(429, rate_limit_body(policy), headers, latency, record)
            fault = self._faults.draw(settings)
            if fault is not None:
                record["reason"] = "random_fault"
                if fault == "drop":
                    return Answer(None, None, headers, latency, record)
                return Answer(int(fault), error_body(int(fault)), headers, latency, record)
            requested_at = utc_iso()
            if not json_ok:
                status, body = 400, error_body(400, "Invalid input JSON: the body is not JSON.")
            else:
                status, body = self._endpoint(route, scopes, settings, query, payload, requested_at)
            return Answer(status, body, headers, latency, record)

    def _scripted(
        self, scripted: dict[str, Any], headers: dict[str, str], emails: list[str], payload: Any
    ) -> tuple[int | None, JsonBody]:
        if scripted.get("drop"):
            return None, None
        status = scripted["status"]
        message, category = scripted.get("message"), scripted.get("category")
        if status == 429:
            if "retry_after" in scripted:
                headers["Retry-After"] = str(scripted["retry_after"])
            return 429, rate_limit_body(scripted.get("policy", ROLLING_POLICY))
        if status < 400 and scripted.get("call_status"):
            # An unfinished call (PENDING, PROCESSING, CANCELED): nothing applied yet.
            return status, {**envelope([], [], utc_iso()), "status": scripted["call_status"]}
        if status < 400:  # a 2xx envelope carrying an error: nothing applied
            ids = sorted(
                {
                    str(i.get("subscriptionId"))
                    for i in inputs_of(payload) or []
                    if isinstance(i, dict)
                }
            )
            if isinstance(payload, dict) and "subscriptionId" in payload:
                ids = [str(payload["subscriptionId"])]
            error = item_error(
                message or "Scripted item error.", category or "VALIDATION_ERROR", emails, ids
            )
            return status, envelope([], [error], utc_iso())
        if status == 403 and not message:
            return 403, missing_scope_body(READ_WRITE_SCOPE)
        return status, error_body(status, message, category)

    def _endpoint(
        self,
        route: Route,
        scopes: frozenset[str],
        settings: SandboxSettings,
        query: str,
        payload: Any,
        requested_at: str,
    ) -> tuple[int, JsonBody]:
        if READ_WRITE_SCOPE not in scopes:
            return 403, missing_scope_body(READ_WRITE_SCOPE)
        if route.name == "definitions":
            definitions = [definition_json(d) for d in settings.definitions]
            # HubSpot's v4 answer is the envelope; ``subscriptionDefinitions`` is the /v3 key.
            return 200, {
                **envelope(definitions, [], requested_at),
                "subscriptionDefinitions": definitions,
            }
        if route.name == "write_one":
            return self._write_one(route.email or "", settings, payload, requested_at)
        if route.name == "batch_write":
            if BATCH_WRITE_SCOPE not in scopes:
                return 403, missing_scope_body(BATCH_WRITE_SCOPE)
            return self._write_batch(settings, payload, requested_at)
        params = parse_qs(query)
        channel = params.get("channel", [None])[0]
        if channel != "EMAIL":
            return 400, error_body(400, f"channel must be EMAIL; got {channel!r}")
        if route.name == "unsubscribe_all":
            verbose = params.get("verbose", ["false"])[0].lower() == "true"
            return self._unsubscribe_all(route.email or "", settings, verbose, requested_at)
        reads = Reads(self._store, settings.definitions, requested_at)
        kind = WIDE_STATUSES if route.name in ("read_wide_one", "batch_read_wide") else STATUSES
        if route.name.startswith("batch_"):
            return reads.batch(payload, kind)
        return reads.one(route.email or "", kind)

    def _write_one(
        self, email: str, settings: SandboxSettings, payload: Any, requested_at: str
    ) -> tuple[int, JsonBody]:
        problems = write_problems(payload, email_in_body=False)
        if not is_plausible_email(email):
            problems.insert(0, ("subscriberIdString", f"not a valid email address: {email!r}"))
        if problems:
            message = "Invalid input: " + "; ".join(f"{f}: {m}" for f, m in problems)
            return 400, error_body(
                400, message, errors=[{"message": m, "in": f} for f, m in problems]
            )
        definition = settings.definition(payload["subscriptionId"])
        if definition is None:
            message = f"Subscription {payload['subscriptionId']} does not exist in this portal."
            return 400, error_body(
                400, message, errors=[{"message": message, "in": "subscriptionId"}]
            )
        rejected = _rejection(settings, email)
        if rejected:
            return rejected
        item = self._store.write(
            email,
            definition,
            payload["channel"],
            payload["statusState"],
            payload.get("legalBasis"),
            payload.get("legalBasisExplanation"),
        )
        return 200, envelope([item], [], requested_at)

    def _write_batch(
        self, settings: SandboxSettings, payload: Any, requested_at: str
    ) -> tuple[int, JsonBody]:
        """Refuse the whole batch for any malformed input; else apply items one by one.

        Items HubSpot can only refuse after looking (unknown subscription, rejected email)
        become ``errors[]`` entries; such a partial answer is ``partial_status`` (207 or 200).
        """
        inputs = inputs_of(payload)
        if not inputs:
            return 400, error_body(400, "Invalid input: 'inputs' must be a non-empty list.")
        bad = [
            (index, problems)
            for index, item in enumerate(inputs)
            if (problems := write_problems(item, email_in_body=True))
        ]
        if bad:
            described = [
                f"inputs[{index}]: " + ", ".join(f"{f}: {m}" if f else m for f, m in problems)
                for index, problems in bad
            ]
            errors = [
                {"message": m, "in": f"inputs[{index}].{f}" if f else f"inputs[{index}]"}
                for index, problems in bad
                for f, m in problems
            ]
            return 400, error_body(400, "Invalid input(s): " + "; ".join(described), errors=errors)
        results, errors = [], []
        for item in inputs:
            email, subscription_id = item["subscriberIdString"], item["subscriptionId"]
            rule = settings.reject_emails.get(email.lower())
            definition = settings.definition(subscription_id)
            if rule is not None:
                errors.append(
                    item_error(
                        rule.get("message") or "This email cannot be updated.",
                        rule.get("category", "VALIDATION_ERROR"),
                        [email],
                        [subscription_id],
                    )
                )
            elif definition is None:
                errors.append(
                    item_error(
                        f"Subscription {subscription_id} does not exist in this portal.",
                        "VALIDATION_ERROR",
                        [email],
                        [subscription_id],
                    )
                )
            else:
                results.append(
                    self._store.write(
                        email,
                        definition,
                        item["channel"],
                        item["statusState"],
                        item.get("legalBasis"),
                        item.get("legalBasisExplanation"),
                    )
                )
        status = settings.partial_status if errors else 200
        return status, envelope(results, errors, requested_at)

    def _unsubscribe_all(
        self, email: str, settings: SandboxSettings, verbose: bool, requested_at: str
    ) -> tuple[int, JsonBody]:
        """Opt a contact out of all email (see :meth:`ConsentStore.unsubscribe_all`).

        Like HubSpot, the answer lists the subscription statuses it changed only with
        ``verbose=true``; without it ``results`` is empty.
        """
        refused = invalid_email_answer(email) or _rejection(settings, email)
        if refused:
            return refused
        changed = self._store.unsubscribe_all(email, settings.definitions, "EMAIL")
        return 200, envelope(changed if verbose else [], [], requested_at)

    def log(self, record: dict[str, Any], status: int | str, finished: float) -> None:
        """Keep one answered (or dropped) API request for :meth:`requests`."""
        with self._lock:
            self._records.append(
                {
                    **record,
                    "index": len(self._records),
                    "status": status,
                    "latency_ms": round((finished - record["monotonic"]) * 1000, 3),
                }
            )

    # -- control and inspection -----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        with self._lock:
            return {**self._settings.to_json(), "pending_script": self._script.pending()}

    def configure(self, **changes: Any) -> dict[str, Any]:
        with self._lock:
            self._settings = self._settings.updated(**changes)
            if "seed" in changes:
                self._faults.reseed(self._settings.seed)
        return self.config()

    def script(self, answers: list[dict[str, Any]]) -> None:
        with self._lock:
            self._script.add(answers)

    def reset(self) -> None:
        """Forget statuses, scripts, request records and rate windows; settings stay."""
        with self._lock:
            self._store.clear()
            self._script.clear()
            self._limiter.reset()
            self._records.clear()
            self._faults.reseed(self._settings.seed)

    def statuses(self) -> dict[StatusKey, dict[str, Any]]:
        with self._lock:
            return self._store.snapshot()

    def wide_statuses(self) -> dict[WideKey, dict[str, Any]]:
        with self._lock:
            return self._store.wide_snapshot()

    # Changes behind the pipeline's back. Each refuses the whole request, naming every bad
    # record, before it changes anything.

    def seed_statuses(self, records: list[dict[str, Any]]) -> None:
        with self._lock:
            known_ids = {d["id"] for d in self._settings.definitions}
            raise_for_problems("statuses", records, lambda r: status_record_problems(r, known_ids))
            for record in records:
                self._store.seed(record)

    def drop_statuses(self, records: list[dict[str, Any]]) -> None:
        raise_for_problems("statuses", records, status_key_problems)
        keys = [
            (r["email"].lower(), int(r["subscriptionId"]), r.get("channel") or "EMAIL")
            for r in records
        ]
        with self._lock:
            self._store.drop(keys)

    def forget_contacts(self, emails: list[str]) -> None:
        raise_for_problems("emails", emails, email_problems)
        with self._lock:
            self._store.forget(emails)

    def set_wide_statuses(self, records: list[dict[str, Any]]) -> None:
        raise_for_problems("wide_statuses", records, wide_record_problems)
        with self._lock:
            for record in records:
                self._store.set_wide(record)

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records[since:]]
