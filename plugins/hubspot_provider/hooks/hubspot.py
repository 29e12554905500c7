"""HubSpotHook: the wire to HubSpot's Communication Preferences API.

Built on the HTTP provider's :class:`HttpHook` (connection lookup, base URL, TLS and proxy extras),
it adds what HubSpot needs: a Bearer token, one reused session, request pacing shared by every
parallel task, bounded retries, and the parsing of every answer into wire-level results
(:class:`StatusWriteResult`, :class:`ContactStatuses`) or a :class:`HubSpotError`. What a result
means for a caller (a ledger outcome, a reconciliation class) is the caller's business: this
module imports nothing from the pipeline.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests.adapters import HTTPAdapter

from hubspot_provider.exceptions import (
    HubSpotAuthError,
    HubSpotDailyLimitError,
    HubSpotError,
    HubSpotRejectedError,
    HubSpotScopeError,
    HubSpotTransientError,
)
from hubspot_provider.hooks.pacing import RatePacer

# Extras this hook reads; HttpHook would otherwise send each of them as an HTTP header.
SETTINGS_EXTRAS = (
    "rate_limit_per_10s",
    "api_version",
    "write_mode",
    "batch_size",
    "max_in_flight",
    "max_attempts",
    "resubscribe_guard",
)
DEFAULT_TIMEOUT_S = 30.0
# The top-level ``status`` of an answer that finished; PENDING, PROCESSING, CANCELED did not.
COMPLETE = "COMPLETE"


@dataclass(frozen=True)
class HubSpotSettings:
    """Per-connection settings, from the connection's extras (see README, Connections)."""

    rate_limit_per_10s: int = 100
    api_version: str = "v4"
    write_mode: str = "single"
    batch_size: int = 100
    max_in_flight: int = 4
    max_attempts: int = 5
    resubscribe_guard: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def rows_per_request(self) -> int:
        """Changes one write request carries: ``batch_size`` in batch mode, else one."""
        return self.batch_size if self.write_mode == "batch" else 1

    @classmethod
    def from_extras(cls, extras: dict[str, Any]) -> HubSpotSettings:
        def flag(value: Any) -> bool:
            return str(value).strip().lower() in ("1", "true", "yes", "on")

        def number(name: str, default: Any, cast: type = int) -> Any:
            value = extras.get(name, default)
            try:
                return cast(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"hubspot connection extra {name}={value!r}: expected a number"
                ) from None

        settings = cls(
            rate_limit_per_10s=number("rate_limit_per_10s", cls.rate_limit_per_10s),
            api_version=str(extras.get("api_version", cls.api_version)).strip("/"),
            write_mode=str(extras.get("write_mode", cls.write_mode)).lower(),
            batch_size=number("batch_size", cls.batch_size),
            max_in_flight=number("max_in_flight", cls.max_in_flight),
            max_attempts=number("max_attempts", cls.max_attempts),
            resubscribe_guard=flag(extras.get("resubscribe_guard", cls.resubscribe_guard)),
            timeout_s=number("timeout", cls.timeout_s, float),
        )
        if settings.write_mode not in ("single", "batch"):
            raise ValueError(
                f"hubspot connection extra write_mode={settings.write_mode!r}: "
                "expected 'single' or 'batch'"
            )
        for name in ("rate_limit_per_10s", "batch_size", "max_in_flight", "max_attempts"):
            if getattr(settings, name) < 1:
                raise ValueError(f"hubspot connection extra {name} must be at least 1")
        return settings


@dataclass(frozen=True)
class StatusChange:
    """One status update to send: a consent change as the pipeline planned it."""

    change_id: str
    email: str
    subscription_id: int
    status_state: str
    channel: str = "EMAIL"
    legal_basis: str | None = None
    legal_basis_explanation: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "statusState": self.status_state,
            "channel": self.channel,
            "subscriptionId": int(self.subscription_id),
        }
        if self.legal_basis:
            body["legalBasis"] = self.legal_basis
            if self.legal_basis_explanation:
                body["legalBasisExplanation"] = self.legal_basis_explanation
        return body


@dataclass
class StatusWriteResult:
    """What HubSpot answered for one change: wire facts only, no verdict.

    :param change_id: the caller's id of the change (echoed, never sent).
    :param http_status: the final answer's HTTP status; None when no answer came at all.
    :param call_status: the answer's top-level ``status`` (only ``COMPLETE`` is a finished call).
    :param error_status: the ``status`` of HubSpot's per-item error for this change, if any
        (``"error"`` or an HTTP-like code): set only for an item error inside a 2xx answer.
    :param in_results: the change is among the answer's ``results``.
    :param error_category: HubSpot's error category, or the hook's name for what went wrong
        (``TRANSIENT``, ``HTTP_404``, ``ITEM_ERROR``, ``NO_ITEM_RESULT``, ``INCOMPLETE``).
    :param set_status_success_reason: HubSpot's ``setStatusSuccessReason`` for the item.
    :param status_timestamp: HubSpot's ``timestamp`` of the item's status.
    """

    change_id: str
    http_status: int | None
    attempts: int
    sent_at: datetime | None = None
    call_status: str | None = None
    error_status: str | None = None
    in_results: bool = False
    error_category: str | None = None
    error_message: str | None = None
    correlation_id: str | None = None
    set_status_success_reason: str | None = None
    status_timestamp: datetime | None = None


@dataclass(frozen=True)
class SubscriptionStatus:
    """One of a contact's subscription statuses, as HubSpot holds it (``PublicStatus``)."""

    subscription_id: int | None
    channel: str | None
    status: str | None
    timestamp: datetime | None = None
    source: str | None = None
    legal_basis: str | None = None
    subscription_name: str | None = None

    @classmethod
    def from_json(cls, item: dict) -> SubscriptionStatus:
        subscription_id = item.get("subscriptionId")
        return cls(
            subscription_id=int(subscription_id) if str(subscription_id).isdigit() else None,
            channel=item.get("channel"),
            status=item.get("status"),
            timestamp=parse_timestamp(item.get("timestamp")),
            source=item.get("source"),
            legal_basis=item.get("legalBasis"),
            subscription_name=item.get("subscriptionName"),
        )


@dataclass(frozen=True)
class WideStatus:
    """A contact's opt-out of all email (``WideStatus``): PORTAL_WIDE or BUSINESS_UNIT_WIDE."""

    status: str | None
    wide_status_type: str | None
    channel: str | None
    timestamp: datetime | None = None

    @classmethod
    def from_json(cls, item: dict) -> WideStatus:
        return cls(
            status=item.get("status"),
            wide_status_type=item.get("wideStatusType"),
            channel=item.get("channel"),
            timestamp=parse_timestamp(item.get("timestamp")),
        )


@dataclass
class ContactStatuses:
    """One contact's answer to a read.

    :param statuses: its subscription statuses (:meth:`HubSpotHook.read_statuses`).
    :param wide_statuses: its opt-outs of all email (:meth:`HubSpotHook.read_unsubscribe_all`);
        empty when it has not opted out.
    :param known: False when HubSpot does not know the contact (deleted, merged, never written).
    :param error: HubSpot's error for this contact (e.g. an invalid email), if any.
    """

    email: str
    statuses: list[SubscriptionStatus] = field(default_factory=list)
    wide_statuses: list[WideStatus] = field(default_factory=list)
    known: bool = True
    error: str | None = None


@dataclass
class _Answer:
    """One HTTP exchange after retries: the final response, or the transport error."""

    response: requests.Response | None
    attempts: int
    error: str | None = None


def _error_fields(payload: Any) -> tuple[str | None, str | None, str | None]:
    """(category, message, correlation id) from a HubSpot error body; every field optional."""
    if not isinstance(payload, dict):
        return None, None, None
    category = payload.get("category") or payload.get("errorType") or payload.get("subCategory")
    message = payload.get("message")
    correlation = payload.get("correlationId") or payload.get("id")
    return (
        str(category) if category else None,
        str(message)[:1000] if message else None,
        str(correlation) if correlation else None,
    )


def parse_timestamp(value: Any) -> datetime | None:
    """HubSpot's ISO-8601 timestamp as an aware datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def same_contact(email: Any) -> str:
    """How HubSpot matches subscriberIdStrings: case-insensitively, surrounding blanks ignored.

    Used only to pair HubSpot's answers with what was sent, never to change what is sent.
    """
    return str(email).strip().lower()


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class HubSpotHook(HttpHook):
    """Talks to HubSpot's Communication Preferences API through an ``http`` connection.

    Connection: host = API base URL; password = private-app access token (sent as
    ``Authorization: Bearer``). Extras: see :class:`HubSpotSettings`.

    Writes return one :class:`StatusWriteResult` per change and raise only for what stops every
    change alike (:class:`HubSpotAuthError`, :class:`HubSpotDailyLimitError`). Reads return
    :class:`ContactStatuses` per contact and raise a :class:`HubSpotError` when they cannot.

    :param hubspot_conn_id: the Airflow connection id.
    :param parallel_tasks: how many tasks share the app's rate limit at once (the pool's slots).
    """

    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    conn_type = "http"
    hook_name = "HubSpot"

    def __init__(self, hubspot_conn_id: str = default_conn_name, parallel_tasks: int = 1) -> None:
        super().__init__(method="POST", http_conn_id=hubspot_conn_id)
        self.hubspot_conn_id = hubspot_conn_id
        self.parallel_tasks = max(1, parallel_tasks)
        self._session: requests.Session | None = None
        self._settings: HubSpotSettings | None = None
        self._pacer: RatePacer | None = None
        self._session_lock = threading.Lock()

    # -- connection ---------------------------------------------------------------------------

    @property
    def settings(self) -> HubSpotSettings:
        if self._settings is None:
            extras = self.get_connection(self.hubspot_conn_id).extra_dejson
            self._settings = HubSpotSettings.from_extras(extras)
        return self._settings

    @property
    def pacer(self) -> RatePacer:
        if self._pacer is None:
            self._pacer = RatePacer(self.settings.rate_limit_per_10s, 10.0, self.parallel_tasks)
        return self._pacer

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options=None):
        """One session for every request of this hook, with the Bearer token and no Basic auth."""
        with self._session_lock:
            if self._session is None:
                connection = self.get_connection(self.hubspot_conn_id)
                session = super().get_conn(headers, extra_options)
                for key in SETTINGS_EXTRAS:
                    session.headers.pop(key, None)
                session.auth = None
                if not connection.password:
                    raise HubSpotAuthError(
                        f"connection {self.hubspot_conn_id!r} has no password: "
                        "set it to the private-app access token"
                    )
                session.headers["Authorization"] = f"Bearer {connection.password}"
                session.headers["Content-Type"] = "application/json"
                # Enough pooled connections for every request in flight, and no hidden retries.
                adapter = HTTPAdapter(pool_maxsize=self.settings.max_in_flight + 2, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                self._session = session
            return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def test_connection(self) -> tuple[bool, str]:
        """Check the token with a harmless read: the portal's subscription definitions."""
        try:
            answer = self._exchange("GET", self._path("/definitions"))
            definitions = self._checked(answer, "reading subscription definitions").get("results")
        except (HubSpotError, ValueError) as exc:
            return False, str(exc)
        return True, f"token accepted; {len(definitions or [])} subscription definitions"

    def _path(self, suffix: str) -> str:
        return f"communication-preferences/{self.settings.api_version}{suffix}"

    def statuses_path(self, suffix: str = "") -> str:
        return self._path("/statuses" + suffix)

    @staticmethod
    def encode_email(email: str) -> str:
        """Percent-encode an email for the path with no safe characters (``/`` too)."""
        return quote(email, safe="")

    # -- one exchange, with pacing and retries ------------------------------------------------

    def _exchange(self, method: str, endpoint: str, json_body: Any = None) -> _Answer:
        """Send one request until it gets a non-transient answer or the attempts run out.

        429 TEN_SECONDLY waits out the window and never counts against ``max_attempts``; 5xx,
        timeouts and dropped connections back off exponentially with jitter.

        :raises HubSpotDailyLimitError: on 429 with policy DAILY.
        """
        session = self.get_conn()
        url = self.url_from_endpoint(endpoint)
        attempts = 0
        last_error: str | None = None
        while True:
            sent_at = self.pacer.acquire()
            attempts += 1
            request = requests.Request(method, url, json=json_body)
            try:
                response = self.run_and_check(
                    session,
                    session.prepare_request(request),
                    {"check_response": False, "timeout": self.settings.timeout_s},
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                response = None
                last_error = f"{type(exc).__name__}: transport error, no answer from HubSpot"
            if response is not None:
                self.pacer.observe(response.headers, sent_at)
                if response.status_code == 429:
                    payload = _json(response) or {}
                    if str(payload.get("policyName", "")).upper() == "DAILY":
                        raise HubSpotDailyLimitError(
                            payload.get("message") or "daily limit reached",
                            http_status=429,
                            category="DAILY",
                            correlation_id=self._correlation(response),
                        )
                    self.pacer.rate_limited(self._retry_after_s(response))
                    attempts -= 1  # rate limiting is pacing, not failure
                    continue
                if response.status_code < 500:
                    return _Answer(response, attempts)
                last_error = f"HTTP {response.status_code} from HubSpot"
            if attempts >= self.settings.max_attempts:
                return _Answer(response, attempts, last_error)
            time.sleep(self._backoff_s(attempts))

    @staticmethod
    def _retry_after_s(response: requests.Response) -> float:
        for header, scale in (
            ("Retry-After", 1.0),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", 1e-3),
        ):
            try:
                return max(0.0, float(response.headers[header]) * scale)
            except (KeyError, ValueError):
                continue
        return 10.0

    @staticmethod
    def _backoff_s(attempt: int) -> float:
        """Full jitter: up to 0.5 s, 1 s, 2 s, ... capped at 30 s."""
        return random.uniform(0, min(30.0, 0.5 * 2 ** (attempt - 1)))

    # -- writes -------------------------------------------------------------------------------

    def write_status(self, change: StatusChange) -> StatusWriteResult:
        """``POST .../statuses/{email}`` for one change; never raises for a row-level problem.

        :raises HubSpotAuthError: on 401/403 (:class:`HubSpotScopeError` for 403).
        :raises HubSpotDailyLimitError: on 429 with policy DAILY.
        """
        endpoint = self.statuses_path("/" + self.encode_email(change.email))
        sent_at = datetime.now(UTC)
        answer = self._exchange("POST", endpoint, change.body())
        return self._single_result(change.change_id, answer, sent_at)

    def _single_result(
        self, change_id: str, answer: _Answer, sent_at: datetime
    ) -> StatusWriteResult:
        response = answer.response
        result = StatusWriteResult(
            change_id,
            http_status=response.status_code if response is not None else None,
            attempts=answer.attempts,
            sent_at=sent_at,
            correlation_id=self._correlation(response),
        )
        if response is None or response.status_code >= 500:
            result.error_category = "TRANSIENT"
            result.error_message = f"{answer.error}; gave up after {answer.attempts} attempts"
            return result
        payload = _json(response)
        self._raise_for_auth(response, payload)
        if response.status_code >= 400:
            category, message, correlation = _error_fields(payload)
            result.error_category = category or f"HTTP_{response.status_code}"
            result.error_message = message or response.reason
            result.correlation_id = correlation or result.correlation_id
            return result
        payload = payload if isinstance(payload, dict) else {}
        result.call_status = payload.get("status")
        errors = payload.get("errors") or []
        if payload.get("numErrors") or errors:
            self._apply_item_error(result, errors[0] if errors else {})
        else:
            items = [item for item in payload.get("results") or [] if isinstance(item, dict)]
            if items:
                self._apply_item(result, items[0])
        return self._note_unfinished(result)

    @staticmethod
    def _apply_item(result: StatusWriteResult, item: dict) -> None:
        result.in_results = True
        result.set_status_success_reason = item.get("setStatusSuccessReason")
        result.status_timestamp = parse_timestamp(item.get("timestamp"))

    @staticmethod
    def _apply_item_error(result: StatusWriteResult, error: Any) -> None:
        """A 2xx whose body reports an error for the item: the body decides, never success."""
        category, message, correlation = _error_fields(error)
        result.error_status = (
            str(error.get("status") or "error") if isinstance(error, dict) else "error"
        )
        result.error_category = category or "ITEM_ERROR"
        result.error_message = message or "HubSpot reported an error for this item"
        result.correlation_id = correlation or result.correlation_id

    @staticmethod
    def _note_unfinished(result: StatusWriteResult) -> StatusWriteResult:
        """Say why a 2xx answer without an item error is still not a done write."""
        if result.error_category is not None:
            return result
        if result.call_status != COMPLETE:
            result.error_category = "INCOMPLETE"
            result.error_message = (
                f"HubSpot answered status {result.call_status or '(none)'}, not {COMPLETE}: "
                "the change is not known to be applied"
            )
        elif not result.in_results:
            result.error_category = "NO_ITEM_RESULT"
            result.error_message = (
                "HubSpot's answer had neither a result nor an error for this item"
            )
        return result

    def write_statuses_batch(self, changes: Sequence[StatusChange]) -> list[StatusWriteResult]:
        """``POST .../statuses/batch/write``; a batch refused as a whole is split to find bad rows.

        :raises HubSpotAuthError: on 401/403 (:class:`HubSpotScopeError` for 403).
        :raises HubSpotDailyLimitError: on 429 with policy DAILY.
        """
        if not changes:
            return []
        sent_at = datetime.now(UTC)
        inputs = [{"subscriberIdString": c.email, **c.body()} for c in changes]
        answer = self._exchange("POST", self.statuses_path("/batch/write"), {"inputs": inputs})
        response = answer.response
        if response is not None and response.status_code in (400, 422) and len(changes) > 1:
            self._raise_for_auth(response, _json(response))
            middle = len(changes) // 2
            return self.write_statuses_batch(changes[:middle]) + self.write_statuses_batch(
                changes[middle:]
            )
        if response is None or response.status_code >= 300:
            return [self._single_result(c.change_id, answer, sent_at) for c in changes]
        payload = _json(response)
        self._raise_for_auth(response, payload)
        return self._batch_results(changes, answer, payload or {}, sent_at)

    def _batch_results(
        self, changes: Sequence[StatusChange], answer: _Answer, payload: dict, sent_at: datetime
    ) -> list[StatusWriteResult]:
        """Pair a batch answer's ``results[]`` and ``errors[]`` with the changes sent."""

        def key(email: Any, subscription_id: Any) -> tuple[str, str]:
            return (same_contact(email), str(subscription_id))

        synced = {
            key(item.get("subscriberIdString"), item.get("subscriptionId")): item
            for item in payload.get("results") or []
            if isinstance(item, dict)
        }
        failed: dict[tuple[str, str], dict] = {}
        failed_emails: dict[str, dict] = {}
        for error in payload.get("errors") or []:
            context = error.get("context") if isinstance(error, dict) else None
            if not isinstance(context, dict):
                continue
            emails = context.get("subscriberIdString") or context.get("subscriberIdStrings") or []
            subscription_ids = context.get("subscriptionId") or []
            for email in emails if isinstance(emails, list) else [emails]:
                for subscription_id in (
                    subscription_ids if isinstance(subscription_ids, list) else [subscription_ids]
                ):
                    failed[key(email, subscription_id)] = error
                failed_emails.setdefault(same_contact(email), error)
        response = answer.response
        correlation = self._correlation(response)
        results = []
        for change in changes:
            result = StatusWriteResult(
                change.change_id,
                http_status=response.status_code,
                attempts=answer.attempts,
                sent_at=sent_at,
                call_status=payload.get("status"),
                correlation_id=correlation,
            )
            k = key(change.email, change.subscription_id)
            error = failed.get(k) or (None if k in synced else failed_emails.get(k[0]))
            if error is not None:
                self._apply_item_error(result, error)
            elif k in synced:
                self._apply_item(result, synced[k])
            results.append(self._note_unfinished(result))
        return results

    def write_statuses(self, changes: Sequence[StatusChange]) -> Iterator[StatusWriteResult]:
        """Send every change, several requests in flight, yielding results as they complete.

        ``write_mode`` decides between one request per change and ``batch_size`` changes per
        batch write. On a daily limit or an auth refusal no new request starts; results of the
        requests already in flight are yielded first, then the exception is raised.
        """
        settings = self.settings
        size = settings.rows_per_request
        units = iter([changes[i : i + size] for i in range(0, len(changes), size)])
        stop: BaseException | None = None
        with ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="hubspot") as pool:
            pending: set[Future] = set()
            while True:
                while stop is None and len(pending) < settings.max_in_flight:
                    unit = next(units, None)
                    if unit is None:
                        break
                    pending.add(pool.submit(self._write_unit, unit))
                if not pending:
                    break
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        yield from future.result()
                    except (HubSpotDailyLimitError, HubSpotAuthError) as exc:
                        stop = stop or exc
        if stop is not None:
            raise stop

    def _write_unit(self, unit: Sequence[StatusChange]) -> list[StatusWriteResult]:
        if self.settings.write_mode == "batch":
            return self.write_statuses_batch(unit)
        return [self.write_status(change) for change in unit]

    # -- reads --------------------------------------------------------------------------------

    def read_statuses(
        self, emails: Iterable[str], channel: str = "EMAIL"
    ) -> dict[str, ContactStatuses]:
        """Every subscription status of each contact, keyed by the emails as given.

        Batch reads of ``batch_size`` contacts, or one GET per contact when the token lacks the
        batch scope or the version lacks the route. An answer that is not COMPLETE is not taken
        as the contacts' state: a read that cannot be trusted raises.

        :raises HubSpotTransientError: no usable answer after every attempt, or not COMPLETE.
        :raises HubSpotRejectedError: HubSpot refused the read (4xx).
        :raises HubSpotAuthError: on 401/403.
        :raises HubSpotDailyLimitError: on 429 with policy DAILY.
        """
        return self._read(emails, channel, "", "statuses")

    def read_unsubscribe_all(
        self, emails: Iterable[str], channel: str = "EMAIL"
    ) -> dict[str, ContactStatuses]:
        """Each contact's opt-out of all email (``wide_statuses``), keyed by the emails as given;
        raises as :meth:`read_statuses` does."""
        return self._read(emails, channel, "/unsubscribe-all", "wideStatuses")

    def _read(
        self, emails: Iterable[str], channel: str, what: str, kind: str
    ) -> dict[str, ContactStatuses]:
        """Read ``kind`` (HubSpot's per-contact key: statuses or wideStatuses) for the emails."""
        given: dict[str, list[str]] = {}
        for email in dict.fromkeys(emails):
            given.setdefault(same_contact(email), []).append(email)
        found = {e: ContactStatuses(e) for spellings in given.values() for e in spellings}

        def record(contact: Any, items: list | None = None, **facts: Any) -> None:
            for email in given.get(same_contact(contact), []):
                if items is not None:
                    parsed = [self._parse_read_item(kind, i) for i in items if isinstance(i, dict)]
                    facts["wide_statuses" if kind == "wideStatuses" else "statuses"] = parsed
                for name, value in facts.items():
                    setattr(found[email], name, value)

        contacts = sorted(given)
        for start in range(0, len(contacts), self.settings.batch_size):
            chunk = contacts[start : start + self.settings.batch_size]
            answer = self._exchange(
                "POST",
                self.statuses_path(f"/batch{what}/read?channel={channel}"),
                {"inputs": chunk},
            )
            response = answer.response
            if response is not None and response.status_code in (403, 404, 405):
                # No batch scope, or no such route on this version: read one by one.
                for contact in chunk:
                    self._read_one(contact, channel, what, kind, record)
                continue
            payload = self._checked(answer, f"reading {kind}")
            for item in payload.get("results") or []:
                if isinstance(item, dict):
                    record(item.get("subscriberIdString", ""), item.get(kind) or [])
            for error in payload.get("errors") or []:
                category, message, _ = _error_fields(error)
                context = error.get("context") if isinstance(error, dict) else None
                ids = (context or {}).get("subscriberIdString") or []
                for contact in ids if isinstance(ids, list) else [ids]:
                    if category == "OBJECT_NOT_FOUND":
                        record(contact, known=False)
                    else:
                        record(contact, error=f"{category or 'ITEM_ERROR'}: {message}")
        return found

    def _read_one(self, contact: str, channel: str, what: str, kind: str, record) -> None:
        answer = self._exchange(
            "GET", self.statuses_path(f"/{self.encode_email(contact)}{what}?channel={channel}")
        )
        if answer.response is not None and answer.response.status_code == 404:
            record(contact, known=False)
            return
        # v4 and the date-versioned paths answer the usual envelope: the items are `results`.
        record(contact, self._checked(answer, f"reading {kind}").get("results") or [])

    @staticmethod
    def _parse_read_item(kind: str, item: dict) -> SubscriptionStatus | WideStatus:
        return (
            WideStatus.from_json(item)
            if kind == "wideStatuses"
            else SubscriptionStatus.from_json(item)
        )

    def _checked(self, answer: _Answer, what: str) -> dict:
        """The body of a finished, successful read, or the :class:`HubSpotError` it amounts to."""
        response = answer.response
        if response is None or response.status_code >= 500:
            raise HubSpotTransientError(
                f"{what} from HubSpot failed: {answer.error}; gave up after {answer.attempts} attempts",
                http_status=response.status_code if response is not None else None,
                correlation_id=self._correlation(response),
            )
        payload = _json(response)
        self._raise_for_auth(response, payload)
        category, message, correlation = _error_fields(payload)
        correlation = correlation or self._correlation(response)
        if response.status_code >= 400:
            raise HubSpotRejectedError(
                f"{what}: HubSpot answered {response.status_code}: {message} "
                f"(correlation id {correlation})",
                http_status=response.status_code,
                category=category,
                correlation_id=correlation,
            )
        payload = payload if isinstance(payload, dict) else {}
        if payload.get("status") != COMPLETE:
            raise HubSpotTransientError(
                f"{what}: HubSpot answered status {payload.get('status') or '(none)'}, not "
                f"{COMPLETE}; the answer is not the contact's state yet (correlation id {correlation})",
                http_status=response.status_code,
                correlation_id=correlation,
            )
        return payload

    # -- helpers ------------------------------------------------------------------------------

    def _raise_for_auth(self, response: requests.Response, payload: Any) -> None:
        if response.status_code not in (401, 403):
            return
        category, message, correlation = _error_fields(payload)
        what = (
            "the access token was refused (bad or expired token)"
            if response.status_code == 401
            else "the token lacks a required scope (communication_preferences.write; batch "
            "mode also needs communication_preferences.statuses.batch.write)"
        )
        error = HubSpotAuthError if response.status_code == 401 else HubSpotScopeError
        raise error(
            f"HubSpot answered {response.status_code} {category or ''}: {what}. "
            f"Check connection {self.hubspot_conn_id!r}. HubSpot said: {message or response.reason} "
            f"(correlation id {correlation})",
            http_status=response.status_code,
            category=category,
            correlation_id=correlation,
        )

    @staticmethod
    def _correlation(response: requests.Response | None) -> str | None:
        if response is None:
            return None
        return response.headers.get("X-HubSpot-Correlation-Id") or _error_fields(_json(response))[2]
