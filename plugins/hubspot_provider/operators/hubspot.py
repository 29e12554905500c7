"""Operators over :class:`HubSpotHook`: one unit of work each, no wire logic of their own.

Shaped like the HTTP provider's ``HttpOperator`` and the Slack provider's ``SlackAPIOperator``: the
hook owns the connection, pacing, retries and answer parsing; an operator turns its templated
arguments into one hook call and the hook's wire-level results into a JSON-able XCom.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from hubspot_provider.exceptions import (
    HubSpotAuthError,
    HubSpotDailyLimitError,
    HubSpotError,
    HubSpotRejectedError,
)
from hubspot_provider.hooks.hubspot import HubSpotHook, StatusChange

# What each final error means for the task: the same call would get the same answer, so it fails
# at once instead of spending Airflow's retries. A HubSpotTransientError is raised as it is: a
# retry may succeed.
FINAL_ERRORS: dict[type[HubSpotError], str] = {
    HubSpotAuthError: "HubSpot refused the credentials; every request would fail alike",
    HubSpotDailyLimitError: "HubSpot's daily API limit is reached; nothing more can be sent "
    "until the account's midnight",
    HubSpotRejectedError: "HubSpot refused the request as sent; a retry would get the same answer",
}


def to_xcom(result: Any) -> dict[str, Any]:
    """A hook result (a dataclass) as a JSON-able dict: timestamps become ISO-8601 strings."""

    def fields(items: list[tuple[str, Any]]) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in items}

    return dataclasses.asdict(result, dict_factory=fields)


class HubSpotBaseOperator(BaseOperator):
    """Base of the HubSpot operators: the hook, and what HubSpot's errors mean for the task.

    A subclass implements :meth:`call_hubspot`. An auth refusal, a daily limit or a request
    HubSpot rejects as sent fails the task without retries, saying what it means; a transient
    error is left to Airflow's retries.

    :param hubspot_conn_id: the ``http`` connection to HubSpot (templated).
    :param parallel_tasks: how many tasks share the app's rate limit at once (e.g. the slots of
        the pool the task runs in).
    """

    template_fields: Sequence[str] = ("hubspot_conn_id",)
    ui_color = "#ff7a59"

    def __init__(
        self,
        *,
        hubspot_conn_id: str = HubSpotHook.default_conn_name,
        parallel_tasks: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hubspot_conn_id = hubspot_conn_id
        self.parallel_tasks = parallel_tasks

    @cached_property
    def hook(self) -> HubSpotHook:
        return HubSpotHook(self.hubspot_conn_id, parallel_tasks=self.parallel_tasks)

    def execute(self, context: Any) -> Any:
        try:
            return self.call_hubspot(context)
        except tuple(FINAL_ERRORS) as exc:
            meaning = next(text for kind, text in FINAL_ERRORS.items() if isinstance(exc, kind))
            raise AirflowFailException(f"{meaning}: {exc}") from exc
        finally:
            self.hook.close()

    def call_hubspot(self, context: Any) -> Any:
        """The task's work through :attr:`hook`; its return value is the task's XCom."""
        raise NotImplementedError(f"{type(self).__name__} must implement call_hubspot")


class HubSpotWriteStatusesOperator(HubSpotBaseOperator):
    """Set contacts' subscription statuses (:meth:`HubSpotHook.write_statuses`).

    One request per change, or ``batch_size`` changes per batch write, as the connection's
    ``write_mode`` says. Returns one dict per change, in the order HubSpot answered (the fields of
    :class:`~hubspot_provider.hooks.hubspot.StatusWriteResult`); a change HubSpot did not apply
    has an ``error_category`` there, and does not fail the task.

    .. code-block:: python

        HubSpotWriteStatusesOperator(
            task_id="unsubscribe",
            changes=[
                {"email": "{{ params.email }}", "subscription_id": 1001,
                 "status_state": "UNSUBSCRIBED"},
            ],
        )

    :param changes: the status updates (templated): dicts with the fields of
        :class:`~hubspot_provider.hooks.hubspot.StatusChange` (``email``, ``subscription_id``,
        ``status_state``; optional ``channel``, ``legal_basis``, ``legal_basis_explanation``, and
        ``change_id``, your id echoed in the result, by default the change's position).
    """

    template_fields: Sequence[str] = (*HubSpotBaseOperator.template_fields, "changes")
    template_fields_renderers = {"changes": "json"}

    def __init__(self, *, changes: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.changes = changes

    def call_hubspot(self, context: Any) -> list[dict[str, Any]]:
        changes = [status_change(position, item) for position, item in enumerate(self.changes)]
        results: list[dict[str, Any]] = []
        try:
            for result in self.hook.write_statuses(changes):
                results.append(to_xcom(result))
        except HubSpotError:
            self.log.warning(
                "stopped: HubSpot answered %d of %d status updates first",
                len(results),
                len(changes),
            )
            raise
        unapplied = Counter(r["error_category"] for r in results if r["error_category"])
        self.log.info(
            "HubSpot answered %d status updates; not applied: %s",
            len(results),
            ", ".join(f"{k} {v}" for k, v in sorted(unapplied.items())) or "none",
        )
        return results


def status_change(position: int, item: Mapping[str, Any]) -> StatusChange:
    """A :class:`StatusChange` from one templated dict; its ``change_id`` defaults to its
    position. Unknown or missing fields are named, not left to a ``TypeError``."""
    names = {f.name for f in dataclasses.fields(StatusChange)}
    required = {
        f.name for f in dataclasses.fields(StatusChange) if f.default is dataclasses.MISSING
    }
    given = {"change_id": str(position), **item}
    unknown, missing = set(given) - names, required - set(given)
    if unknown or missing:
        raise ValueError(
            f"status update {position}: unknown fields {sorted(unknown)}, missing fields "
            f"{sorted(missing)}; expected {sorted(names)}"
        )
    return StatusChange(**given)


class HubSpotReadStatusesOperator(HubSpotBaseOperator):
    """Read contacts' subscription statuses (:meth:`HubSpotHook.read_statuses`).

    Batch reads of ``batch_size`` contacts (one GET per contact without the batch scope). Returns
    ``{email: {...}}`` for each email as given: the fields of
    :class:`~hubspot_provider.hooks.hubspot.ContactStatuses` (``statuses``, ``known``, ``error``).
    An answer that is not COMPLETE, or no answer after every attempt, raises
    :class:`~hubspot_provider.exceptions.HubSpotTransientError` for Airflow to retry.

    :param emails: the contacts' emails (templated): a list, or one email.
    :param channel: the channel to read (templated).
    """

    template_fields: Sequence[str] = (*HubSpotBaseOperator.template_fields, "emails", "channel")

    def __init__(self, *, emails: Sequence[str] | str, channel: str = "EMAIL", **kwargs: Any):
        super().__init__(**kwargs)
        self.emails = emails
        self.channel = channel

    def call_hubspot(self, context: Any) -> dict[str, dict[str, Any]]:
        emails = [self.emails] if isinstance(self.emails, str) else list(self.emails)
        found = self.hook.read_statuses(emails, self.channel)
        self.log.info(
            "read the %s statuses of %d contacts (%d unknown to HubSpot, %d refused)",
            self.channel,
            len(found),
            sum(not contact.known for contact in found.values()),
            sum(contact.error is not None for contact in found.values()),
        )
        return {email: to_xcom(contact) for email, contact in found.items()}
