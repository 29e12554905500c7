"""HubSpotHook: the wire to HubSpot's Communication Preferences API.

Built on the HTTP provider's :class:`HttpHook` (connection lookup, base URL, TLS and proxy extras),
it adds what HubSpot needs: a Bearer token, one reused session, request pacing shared by every
parallel task, bounded retries, and the mapping of every HubSpot answer to a ledger outcome.
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

from hubspot_provider.hooks.pacing import RatePacer
from include.consent_sync.contract import Outcome

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


class HubSpotAuthError(Exception):
    """401 or 403: the same answer would come back for every row, so the push stops at once."""


class DailyLimitReached(Exception):
    """429 with policy DAILY: nothing more can be sent until the account's midnight."""


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

    @classmethod
    def from_extras(cls, extras: dict[str, Any]) -> HubSpotSettings:
        def flag(value: Any) -> bool:
            return str(value).strip().lower() in ("1", "true", "yes", "on")

        settings = cls(
            rate_limit_per_10s=int(extras.get("rate_limit_per_10s", cls.rate_limit_per_10s)),
            api_version=str(extras.get("api_version", cls.api_version)).strip("/"),
            write_mode=str(extras.get("write_mode", cls.write_mode)).lower(),
            batch_size=int(extras.get("batch_size", cls.batch_size)),
            max_in_flight=int(extras.get("max_in_flight", cls.max_in_flight)),
            max_attempts=int(extras.get("max_attempts", cls.max_attempts)),
            resubscribe_guard=flag(extras.get("resubscribe_guard", cls.resubscribe_guard)),
            timeout_s=float(extras.get("timeout", cls.timeout_s)),
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
class WriteResult:
    """What happened to one change: the per-row facts the ledger records."""

    change_id: str
    outcome: Outcome
    http_status: int | None = None
    error_category: str | None = None
    error_message: str | None = None
    correlation_id: str | None = None
    set_status_success_reason: str | None = None
    attempts: int = 0
    sent_at: datetime | None = field(default_factory=lambda: datetime.now(UTC))


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


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class HubSpotHook(HttpHook):
    """Talks to HubSpot's Communication Preferences API through an ``http`` connection.

    Connection: host = API base URL; password = private-app access token (sent as
    ``Authorization: Bearer``). Extras: see :class:`HubSpotSettings`.

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

    def statuses_path(self, suffix: str = "") -> str:
        return f"communication-preferences/{self.settings.api_version}/statuses{suffix}"

    @staticmethod
    def encode_email(email: str) -> str:
        """Percent-encode an email for the path with no safe characters (``/`` too)."""
        return quote(email, safe="")

    # -- one exchange, with pacing and retries ------------------------------------------------

    def _exchange(self, method: str, endpoint: str, json_body: Any = None) -> _Answer:
        """Send one request until it gets a non-transient answer or the attempts run out.

        429 TEN_SECONDLY waits out the window and never counts against ``max_attempts``; 5xx,
        timeouts and dropped connections back off exponentially with jitter.
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
                        raise DailyLimitReached(payload.get("message") or "daily limit reached")
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

    def write_status(self, change: StatusChange) -> WriteResult:
        """``POST .../statuses/{email}`` for one change; never raises for a row-level problem.

        :raises HubSpotAuthError: on 401/403.
        :raises DailyLimitReached: on 429 with policy DAILY.
        """
        endpoint = self.statuses_path("/" + self.encode_email(change.email))
        sent_at = datetime.now(UTC)
        answer = self._exchange("POST", endpoint, change.body())
        result = self._single_result(change.change_id, answer)
        result.sent_at = sent_at
        return result

    def _single_result(self, change_id: str, answer: _Answer) -> WriteResult:
        response = answer.response
        if response is None or response.status_code >= 500:
            return WriteResult(
                change_id,
                Outcome.FAILED,
                http_status=response.status_code if response is not None else None,
                error_category="TRANSIENT",
                error_message=f"{answer.error}; gave up after {answer.attempts} attempts",
                correlation_id=self._correlation(response),
                attempts=answer.attempts,
            )
        payload = _json(response)
        self._raise_for_auth(response, payload)
        if response.status_code >= 400:
            category, message, correlation = _error_fields(payload)
            return WriteResult(
                change_id,
                Outcome.REJECTED,
                http_status=response.status_code,
                error_category=category or f"HTTP_{response.status_code}",
                error_message=message or response.reason,
                correlation_id=correlation or self._correlation(response),
                attempts=answer.attempts,
            )
        errors = (payload or {}).get("errors") or []
        if (payload or {}).get("numErrors") or errors:
            return self._item_error_result(change_id, response, errors, answer.attempts)
        results = (payload or {}).get("results") or [{}]
        return WriteResult(
            change_id,
            Outcome.SYNCED,
            http_status=response.status_code,
            correlation_id=self._correlation(response),
            set_status_success_reason=results[0].get("setStatusSuccessReason"),
            attempts=answer.attempts,
        )

    def _item_error_result(
        self, change_id: str, response: requests.Response, errors: Sequence[Any], attempts: int
    ) -> WriteResult:
        """A 2xx whose body reports an error for the item: the body decides, never 'SYNCED'."""
        item = errors[0] if errors else {}
        category, message, correlation = _error_fields(item)
        status = str(item.get("status", "")) if isinstance(item, dict) else ""
        transient = status.isdigit() and int(status) >= 500
        return WriteResult(
            change_id,
            Outcome.FAILED if transient else Outcome.REJECTED,
            http_status=response.status_code,
            error_category=category or "ITEM_ERROR",
            error_message=message or "HubSpot reported an error for this item",
            correlation_id=correlation or self._correlation(response),
            attempts=attempts,
        )

    def write_statuses_batch(self, changes: Sequence[StatusChange]) -> list[WriteResult]:
        """``POST .../statuses/batch/write``; a batch refused as a whole is split to find bad rows.

        :raises HubSpotAuthError: on 401/403.
        :raises DailyLimitReached: on 429 with policy DAILY.
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
            results = [self._single_result(c.change_id, answer) for c in changes]
        else:
            payload = _json(response)
            self._raise_for_auth(response, payload)
            results = self._batch_results(changes, response, payload or {}, answer.attempts)
        for result in results:
            result.sent_at = sent_at
        return results

    def _batch_results(
        self,
        changes: Sequence[StatusChange],
        response: requests.Response,
        payload: dict,
        attempts: int,
    ) -> list[WriteResult]:
        """Map a batch answer's ``results[]`` and ``errors[]`` back to the changes sent."""

        def key(email: Any, subscription_id: Any) -> tuple[str, str]:
            return (str(email).strip().lower(), str(subscription_id))

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
                failed_emails.setdefault(key(email, "")[0], error)
        correlation = self._correlation(response)
        results = []
        for change in changes:
            k = key(change.email, change.subscription_id)
            error = failed.get(k) or (None if k in synced else failed_emails.get(k[0]))
            if error is not None:
                results.append(
                    self._item_error_result(change.change_id, response, [error], attempts)
                )
            elif k in synced:
                results.append(
                    WriteResult(
                        change.change_id,
                        Outcome.SYNCED,
                        http_status=response.status_code,
                        correlation_id=correlation,
                        set_status_success_reason=synced[k].get("setStatusSuccessReason"),
                        attempts=attempts,
                    )
                )
            else:
                results.append(
                    WriteResult(
                        change.change_id,
                        Outcome.FAILED,
                        http_status=response.status_code,
                        error_category="NO_ITEM_RESULT",
                        error_message="HubSpot's batch answer had neither a result nor an error for this item",
                        correlation_id=correlation,
                        attempts=attempts,
                    )
                )
        return results

    def write_statuses(self, changes: Sequence[StatusChange]) -> Iterator[WriteResult]:
        """Send every change, several requests in flight, yielding results as they complete.

        ``write_mode`` decides between one request per change and ``batch_size`` changes per
        batch write. On a daily limit or an auth refusal no new request starts; results of the
        requests already in flight are yielded first, then the exception is raised.
        """
        settings = self.settings
        size = settings.batch_size if settings.write_mode == "batch" else 1
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
                    except (DailyLimitReached, HubSpotAuthError) as exc:
                        stop = stop or exc
        if stop is not None:
            raise stop

    def _write_unit(self, unit: Sequence[StatusChange]) -> list[WriteResult]:
        if self.settings.write_mode == "batch":
            return self.write_statuses_batch(unit)
        return [self.write_status(change) for change in unit]

    # -- reads (resubscribe guard) ------------------------------------------------------------

    def read_statuses(self, emails: Iterable[str], channel: str = "EMAIL") -> dict[str, list[dict]]:
        """Current statuses per email (lowercased): batch read, else one GET per email.

        Emails HubSpot does not know map to an empty list. Transient failures raise, since a
        guard that cannot read must not let a resubscribe through.
        """
        emails = sorted({e.strip().lower() for e in emails})
        found: dict[str, list[dict]] = {e: [] for e in emails}
        if not emails:
            return found
        for start in range(0, len(emails), self.settings.batch_size):
            chunk = emails[start : start + self.settings.batch_size]
            answer = self._exchange(
                "POST", self.statuses_path(f"/batch/read?channel={channel}"), {"inputs": chunk}
            )
            response = answer.response
            if response is not None and response.status_code in (403, 404, 405):
                # No batch scope or no such route on this version: read one by one.
                for email in chunk:
                    found[email] = self._read_one(email, channel)
                continue
            payload = self._checked_read(answer)
            for item in payload.get("results") or []:
                email = str(item.get("subscriberIdString", "")).strip().lower()
                if email in found:
                    found[email] = list(item.get("statuses") or [])
        return found

    def _read_one(self, email: str, channel: str) -> list[dict]:
        answer = self._exchange(
            "GET", self.statuses_path(f"/{self.encode_email(email)}?channel={channel}")
        )
        if answer.response is not None and answer.response.status_code == 404:
            return []
        # v4 and the date-versioned paths answer the usual envelope: the statuses are `results`.
        return list(self._checked_read(answer).get("results") or [])

    def _checked_read(self, answer: _Answer) -> dict:
        response = answer.response
        if response is None or response.status_code >= 500:
            raise ConnectionError(f"reading statuses from HubSpot failed: {answer.error}")
        payload = _json(response)
        self._raise_for_auth(response, payload)
        if response.status_code >= 400:
            _, message, correlation = _error_fields(payload)
            raise ValueError(
                f"reading statuses from HubSpot answered {response.status_code}: {message} "
                f"(correlation id {correlation})"
            )
        return payload if isinstance(payload, dict) else {}

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
        raise HubSpotAuthError(
            f"HubSpot answered {response.status_code} {category or ''}: {what}. "
            f"Check connection {self.hubspot_conn_id!r}. HubSpot said: {message or response.reason} "
            f"(correlation id {correlation})"
        )

    @staticmethod
    def _correlation(response: requests.Response | None) -> str | None:
        if response is None:
            return None
        return response.headers.get("X-HubSpot-Correlation-Id") or _error_fields(_json(response))[2]
