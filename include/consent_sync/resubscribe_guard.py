"""Resubscribe guard: never resubscribe a contact who opted out inside HubSpot after our change.

A SUBSCRIBED change from the warehouse is older news than an UNSUBSCRIBED that HubSpot recorded
later (the contact clicked "unsubscribe" in an email since). Sending it would override the
contact's newer choice, so such changes end SKIPPED_HUBSPOT_NEWER.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime


def _parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def newer_opt_outs(
    changes: Iterable[Mapping], statuses: Mapping[str, list[dict]]
) -> dict[str, str]:
    """Change ids to skip, each with the reason, for SUBSCRIBED changes HubSpot has overtaken.

    :param changes: rows with change_id, email (normalised), subscription_id, channel,
        status_state and changed_at (an aware datetime).
    :param statuses: current HubSpot statuses per lowercased email, as
        :meth:`HubSpotHook.read_statuses` returns them.
    """
    skipped: dict[str, str] = {}
    for change in changes:
        if change["status_state"] != "SUBSCRIBED":
            continue
        for status in statuses.get(change["email"], []):
            if str(status.get("subscriptionId")) != str(change["subscription_id"]):
                continue
            if str(status.get("channel", change["channel"])) != change["channel"]:
                continue
            opted_out_at = _parse_timestamp(status.get("timestamp"))
            if (
                status.get("status") == "UNSUBSCRIBED"
                and opted_out_at
                and (opted_out_at > change["changed_at"])
            ):
                skipped[change["change_id"]] = (
                    f"HubSpot holds UNSUBSCRIBED since {opted_out_at.isoformat()}, newer than "
                    f"this change ({change['changed_at'].isoformat()}): not resubscribing"
                )
    return skipped
