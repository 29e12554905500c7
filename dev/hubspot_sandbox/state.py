"""What HubSpot holds: one status per (email, subscription, channel), one opt-out of all email
per (email, channel), and the contacts it no longer knows (merged or deleted)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

StatusKey = tuple[str, int, str]
WideKey = tuple[str, str]  # (lowercased email, channel)

WRITE_SOURCE = "Public status API update"
SEEDED_SOURCE = "Subscription preferences page"
# The sandbox has no business units: every opt-out of all email covers the whole portal.
WIDE_STATUS_TYPE = "PORTAL_WIDE"


def utc_iso(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``; milliseconds keep quick changes ordered."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def as_utc_iso(value: datetime | str | None) -> str:
    """A caller's timestamp (aware datetime or ISO 8601 string; None: now) in HubSpot's format.

    :raises ValueError: for a string that is not ISO 8601 or a time without a UTC offset.
    """
    if value is None:
        return utc_iso()
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"timestamp {value!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset (add Z or +00:00)")
    return utc_iso(moment)


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


def wide_status_item(email: str, channel: str, record: dict[str, Any]) -> dict[str, Any]:
    """A contact's opt-out of all email in HubSpot's ``WideStatus`` shape."""
    return {
        "subscriberIdString": email,
        "wideStatusType": WIDE_STATUS_TYPE,
        "status": record["status"],
        "channel": channel,
        "timestamp": record["timestamp"],
        "businessUnitId": 0,
    }


class ConsentStore:
    """Statuses keyed by (lowercased email, subscription id, channel). Not locked: callers are.

    Every email is a contact HubSpot knows, as in a portal holding them all, except those
    :meth:`forget` made unknown; any write or seed for such an email makes it known again
    (HubSpot creates the contact), with no statuses but the one written.
    """

    def __init__(self) -> None:
        self._records: dict[StatusKey, dict[str, Any]] = {}
        self._wide: dict[WideKey, dict[str, Any]] = {}
        self._forgotten: set[str] = set()

    def knows(self, email: str) -> bool:
        return email.lower() not in self._forgotten

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
        self._forgotten.discard(key[0])
        if status == "SUBSCRIBED":
            # v4 resubscribes contacts who opted out of all email (v3 refused to): the contact
            # gets this subscription's email again, so it is no longer opted out of all.
            self._wide.pop((key[0], channel), None)
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

    def unsubscribe_all(
        self, email: str, definitions: tuple[dict[str, Any], ...], channel: str
    ) -> list[dict[str, Any]]:
        """Opt the contact out of all email; answer the subscription statuses it changed.

        As in HubSpot, the opt-out is recorded twice: the wide status becomes UNSUBSCRIBED and
        every subscription not already UNSUBSCRIBED (never-set ones included) becomes
        UNSUBSCRIBED, stamped now. Opting out again changes nothing, timestamps included.
        """
        lowered, now = email.lower(), utc_iso()
        self._forgotten.discard(lowered)
        self._wide.setdefault((lowered, channel), {"status": "UNSUBSCRIBED", "timestamp": now})
        changed = []
        for definition in definitions:
            key = (lowered, definition["id"], channel)
            if self._records.get(key, {}).get("status") == "UNSUBSCRIBED":
                continue
            self._records[key] = {
                "status": "UNSUBSCRIBED",
                "legalBasis": None,
                "legalBasisExplanation": None,
                "source": WRITE_SOURCE,
                "timestamp": now,
            }
            item = status_item(email, definition, channel, self._records[key])
            item["setStatusSuccessReason"] = "UNSUBSCRIBE_FROM_ALL_OCCURRED"
            changed.append(item)
        return changed

    def read_wide(self, email: str, channel: str) -> list[dict[str, Any]]:
        """The contact's opt-out of all email, or nothing when it has not opted out."""
        record = self._wide.get((email.lower(), channel))
        return [wide_status_item(email, channel, record)] if record else []

    # -- changes behind the pipeline's back (records checked by the caller) --------------------

    def seed(self, record: dict[str, Any]) -> None:
        """Pretend the contact changed a status inside HubSpot (e.g. opted out at a given time)."""
        email = str(record["email"]).lower()
        self._forgotten.discard(email)
        key = (email, int(record["subscriptionId"]), record.get("channel") or "EMAIL")
        self._records[key] = {
            "status": record["status"],
            "legalBasis": record.get("legalBasis"),
            "legalBasisExplanation": record.get("legalBasisExplanation"),
            "source": record.get("source") or SEEDED_SOURCE,  # never null for a set status
            "timestamp": as_utc_iso(record.get("timestamp")),
        }

    def drop(self, keys: list[StatusKey]) -> None:
        """Lose stored statuses (a write HubSpot acknowledged and lost): all or, if one is not
        held, none."""
        unknown = [key for key in keys if key not in self._records]
        if unknown:
            raise ValueError(f"no stored status to drop for {', '.join(map(str, unknown))}")
        for key in keys:
            del self._records[key]

    def forget(self, emails: list[str]) -> None:
        """Forget contacts entirely (merged into another or deleted): statuses, opt-out, all."""
        lowered = {email.lower() for email in emails}
        self._records = {k: r for k, r in self._records.items() if k[0] not in lowered}
        self._wide = {k: r for k, r in self._wide.items() if k[0] not in lowered}
        self._forgotten |= lowered

    def set_wide(self, record: dict[str, Any]) -> None:
        """Opt a contact out of all email (UNSUBSCRIBED), or end its opt-out (any other status),
        leaving its subscription statuses as they are."""
        email = str(record["email"]).lower()
        key = (email, record.get("channel") or "EMAIL")
        if record["status"] != "UNSUBSCRIBED":
            self._wide.pop(key, None)
            return
        self._forgotten.discard(email)
        self._wide[key] = {
            "status": "UNSUBSCRIBED",
            "timestamp": as_utc_iso(record.get("timestamp")),
        }

    # -- inspection -----------------------------------------------------------------------------

    def snapshot(self) -> dict[StatusKey, dict[str, Any]]:
        return {key: dict(record) for key, record in self._records.items()}

    def wide_snapshot(self) -> dict[WideKey, dict[str, Any]]:
        return {key: dict(record) for key, record in self._wide.items()}

    def clear(self) -> None:
        self._records.clear()
        self._wide.clear()
        self._forgotten.clear()
