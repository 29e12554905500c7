"""The read endpoints: a contact's statuses or its opt-out of all email, one contact or many."""

from __future__ import annotations

from typing import Any

from dev.hubspot_sandbox.bodies import envelope, error_body, item_error
from dev.hubspot_sandbox.state import ConsentStore
from dev.hubspot_sandbox.validation import inputs_of, is_plausible_email

Answer = tuple[int, dict[str, Any]]
STATUSES, WIDE_STATUSES = "statuses", "wideStatuses"


def invalid_email_answer(email: str) -> Answer | None:
    if is_plausible_email(email):
        return None
    return 400, error_body(400, f"Invalid input: not a valid email address: {email!r}")


def _unknown_message(email: str) -> str:
    return f"No contact with email {email!r} exists in this portal."


class Reads:
    """One read request's work, under the caller's lock.

    ``kind`` is what is read, named as HubSpot's per-contact results name it: ``statuses``
    (every subscription; never-set ones NOT_SPECIFIED with a null timestamp and source) or
    ``wideStatuses`` (the opt-out of all email; empty when the contact has not opted out).
    """

    def __init__(
        self, store: ConsentStore, definitions: tuple[dict[str, Any], ...], requested_at: str
    ) -> None:
        self._store = store
        self._definitions = definitions
        self._requested_at = requested_at

    def _listed(self, kind: str, email: str) -> list[dict[str, Any]]:
        if kind == WIDE_STATUSES:
            return self._store.read_wide(email, "EMAIL")
        return self._store.read(email, self._definitions, "EMAIL")

    def one(self, email: str, kind: str) -> Answer:
        """A single read: 400 for an invalid email, 404 for a contact HubSpot does not know.

        HubSpot's v4 answer is the envelope with ``results``; ``subscriberIdString`` and
        ``statuses`` (or ``wideStatuses``) repeat them in the per-contact shape of batch reads.
        """
        refused = invalid_email_answer(email)
        if refused:
            return refused
        if not self._store.knows(email):
            return 404, error_body(404, _unknown_message(email))
        listed = self._listed(kind, email)
        return 200, {
            **envelope(listed, [], self._requested_at),
            "subscriberIdString": email,
            kind: listed,
        }

    def batch(self, payload: Any, kind: str) -> Answer:
        """One result per contact HubSpot knows; an invalid email or an unknown contact is an
        ``errors[]`` entry instead, and the answer is then 207."""
        inputs = inputs_of(payload)
        if not inputs:
            return 400, error_body(400, "Invalid input: 'inputs' must be a non-empty list.")
        results, errors = [], []
        for email in inputs:
            if not is_plausible_email(email):
                message = f"not a valid email address: {email!r}"
                errors.append(item_error(message, "VALIDATION_ERROR", [email]))
            elif not self._store.knows(email):
                errors.append(item_error(_unknown_message(email), "OBJECT_NOT_FOUND", [email]))
            else:
                results.append({"subscriberIdString": email, kind: self._listed(kind, email)})
        return (207 if errors else 200), envelope(results, errors, self._requested_at)
