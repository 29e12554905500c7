"""Resubscribe guard: never resubscribe a contact who opted out inside HubSpot after our change.

A SUBSCRIBED change from the warehouse is older news than an UNSUBSCRIBED that HubSpot recorded
later (the contact clicked "unsubscribe" in an email since). Sending it would override the
contact's newer choice, so such changes end SKIPPED_HUBSPOT_NEWER.

HubSpot stamps this pipeline's own writes too. An UNSUBSCRIBED that we sent (our last write to
the key, ``key_sent_unsubscribed_at``) is not the contact opting out since: a newer SUBSCRIBED
change from the warehouse may overwrite it, or a late-arriving resubscribe would be lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from hubspot_provider.hooks.hubspot import SubscriptionStatus

# HubSpot's timestamp of our own write: after our sent_at by the request's latency, plus any
# clock difference between HubSpot and the worker.
OWN_WRITE_TOLERANCE = timedelta(minutes=5)


def newer_opt_outs(
    changes: Iterable[Mapping], statuses: Mapping[str, Sequence[SubscriptionStatus]]
) -> dict[str, str]:
    """Change ids to skip, each with the reason, for SUBSCRIBED changes HubSpot has overtaken.

    :param changes: rows with change_id, email (normalised), subscription_id, channel,
        status_state, changed_at (an aware datetime) and key_sent_unsubscribed_at (optional).
    :param statuses: current HubSpot statuses per email (the changes' emails), from
        :meth:`HubSpotHook.read_statuses`.
    """
    skipped: dict[str, str] = {}
    for change in changes:
        if change["status_state"] != "SUBSCRIBED":
            continue
        for status in statuses.get(change["email"], []):
            if str(status.subscription_id) != str(change["subscription_id"]):
                continue
            if (status.channel or change["channel"]) != change["channel"]:
                continue
            opted_out_at = status.timestamp
            our_unsubscribe = change.get("key_sent_unsubscribed_at")
            if (
                status.status == "UNSUBSCRIBED"
                and opted_out_at
                and (opted_out_at > change["changed_at"])
                and not (our_unsubscribe and opted_out_at <= our_unsubscribe + OWN_WRITE_TOLERANCE)
            ):
                skipped[change["change_id"]] = (
                    f"HubSpot holds UNSUBSCRIBED since {opted_out_at.isoformat()}, newer than "
                    f"this change ({change['changed_at'].isoformat()}): not resubscribing"
                )
    return skipped
