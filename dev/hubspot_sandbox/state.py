"""The statuses HubSpot holds: one record per (email, subscription, channel)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

StatusKey = tuple[str, int, str]

WRITE_SOURCE = "Public status API update"
SEEDED_SOURCE = "Subscription preferences page"


def utc_iso(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``; milliseconds keep quick changes ordered."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _success_reason(previous: str, new: str) -> str:
    if previous == new:
        return "NO_STATUS_CHANGE"
    if previous == "UNSUBSCRIBED" and new == "SUBSCRIBED":
        return "RESUBSCRIBE_OCCURRED"
    return "REQUESTED_CHANGE_OCCURRED"


def status_item(
    email: str, definition: dict[str, Any], channel: str, record: dict[str, Any] | None
) -> dict[str, Any]:
    """One subscription's status in HubSpot's shape (reads and write results share it).

    A subscription the contact never had a status for reads NOT_SPECIFIED with a null
    ``timestamp`` and ``source``. ``name`` repeats ``subscriptionName`` for clients written
    against the older ``/v3`` shape.
    """
    record = record or {}
    return {
        "subscriberIdString": email,
        "subscriptionId": definition["id"],
        "subscriptionName": definition["name"],
        "name": definition["name"],
        "channel": channel,
        "status": record.get("status", "NOT_SPECIFIED"),
        "source": record.get("source"),
        "legalBasis": record.get("legalBasis"),
        "legalBasisExplanation": record.get("legalBasisExplanation"),
        "businessUnitId": 0,
        "timestamp": record.get("timestamp"),
    }


class ConsentStore:
    """Statuses keyed by (lowercased email, subscription id, channel). Not locked: callers are."""

    def __init__(self) -> None:
        self._records: dict[StatusKey, dict[str, Any]] = {}

    def write(
        self,
        email: str,
        definition: dict[str, Any],
        channel: str,
        status: str,
        legal_basis: str | None,
        explanation: str | None,
    ) -> dict[str, Any]:
        """Set a status and answer the write's result item.

        Writing the status already held changes nothing, not even the timestamp: HubSpot's
        timestamp says when the contact's status last changed, which is what a client compares
        to decide whether HubSpot holds newer news.
        """
        key = (email.lower(), definition["id"], channel)
        previous = self._records.get(key)
        reason = _success_reason(previous["status"] if previous else "NOT_SPECIFIED", status)
        if reason != "NO_STATUS_CHANGE" or previous is None:
            self._records[key] = {
                "status": status,
                "legalBasis": legal_basis,
                "legalBasisExplanation": explanation,
                "source": WRITE_SOURCE,
                "timestamp": utc_iso(),
            }
        item = status_item(email, definition, channel, self._records[key])
        item["setStatusSuccessReason"] = reason
        return item

    def read(self, email: str, definitions: tuple[dict[str, Any], ...], channel: str) -> list[dict]:
        return [
            status_item(email, d, channel, self._records.get((email.lower(), d["id"], channel)))
            for d in definitions
        ]

    def seed(self, record: dict[str, Any]) -> None:
        """Pretend the contact changed a status inside HubSpot (e.g. opted out at a given time)."""
        timestamp = record.get("timestamp") or utc_iso()
        if isinstance(timestamp, datetime):
            timestamp = utc_iso(timestamp)
        key = (
            str(record["email"]).lower(),
            int(record["subscriptionId"]),
            record.get("channel", "EMAIL"),
        )
        self._records[key] = {
            "status": record["status"],
            "legalBasis": record.get("legalBasis"),
            "legalBasisExplanation": record.get("legalBasisExplanation"),
            "source": record.get("source", SEEDED_SOURCE),
            "timestamp": timestamp,
        }

    def snapshot(self) -> dict[StatusKey, dict[str, Any]]:
        return {key: dict(record) for key, record in self._records.items()}

    def clear(self) -> None:
        self._records.clear()
