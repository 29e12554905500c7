"""What HubSpot refuses as malformed before looking at any contact, and what the control API
refuses to make HubSpot hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dev.hubspot_sandbox.state import as_utc_iso

# HubSpot's enums are the contract's: one list serves the pipeline and its sandbox.
from include.consent_sync.contract import CHANNELS, LEGAL_BASES, STATUS_STATES

Problem = tuple[str, str]  # (field, message)


def is_plausible_email(value: Any) -> bool:
    """One ``@`` with something on both sides, no whitespace, at most 254 characters."""
    if not isinstance(value, str) or len(value) > 254 or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    return bool(local) and bool(domain) and not any(c.isspace() for c in value)


def inputs_of(payload: Any) -> list[Any] | None:
    """A batch request's ``inputs`` list, or None when the body has none."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    return inputs if isinstance(inputs, list) else None


def write_problems(item: Any, *, email_in_body: bool) -> list[Problem]:
    """Structural problems of one status write (the single write carries its email in the path)."""
    if not isinstance(item, dict):
        return [("", "each input must be a JSON object")]
    problems: list[Problem] = []
    if email_in_body and not is_plausible_email(item.get("subscriberIdString")):
        problems.append(
            ("subscriberIdString", f"not a valid email address: {item.get('subscriberIdString')!r}")
        )
    if item.get("statusState") not in STATUS_STATES:
        problems.append(
            (
                "statusState",
                f"must be one of {', '.join(STATUS_STATES)}; got {item.get('statusState')!r}",
            )
        )
    if item.get("channel") not in CHANNELS:
        problems.append(("channel", f"must be EMAIL; got {item.get('channel')!r}"))
    subscription_id = item.get("subscriptionId")
    if not isinstance(subscription_id, int) or isinstance(subscription_id, bool):
        problems.append(("subscriptionId", f"must be an integer; got {subscription_id!r}"))
    if item.get("legalBasis") is not None and item["legalBasis"] not in LEGAL_BASES:
        problems.append(
            ("legalBasis", f"must be one of {', '.join(LEGAL_BASES)}; got {item['legalBasis']!r}")
        )
    explanation = item.get("legalBasisExplanation")
    if explanation is not None and not isinstance(explanation, str):
        problems.append(("legalBasisExplanation", "must be a string"))
    return problems


# -- control records: changes tests make behind the pipeline's back ------------------------------


def email_problems(value: Any) -> list[str]:
    return [] if is_plausible_email(value) else [f"not a valid email address: {value!r}"]


def _timestamp_problems(value: Any) -> list[str]:
    try:
        as_utc_iso(value)
    except ValueError as exc:
        return [str(exc)]
    return []


def _missing(record: dict, names: tuple[str, ...]) -> list[str]:
    return [f"{name}: missing" for name in names if name not in record]


def _email_and_channel_problems(record: dict) -> list[str]:
    problems = [f"email: {p}" for p in email_problems(record["email"])] if "email" in record else []
    if record.get("channel", "EMAIL") not in CHANNELS:
        problems.append(f"channel: must be EMAIL; got {record['channel']!r}")
    return problems


def _status_problems(record: dict) -> list[str]:
    if "status" not in record or record["status"] in STATUS_STATES:
        return []
    return [f"status: must be one of {', '.join(STATUS_STATES)}; got {record['status']!r}"]


def status_key_problems(record: Any) -> list[str]:
    """Why ``{email, subscriptionId, channel?}`` does not name a status."""
    if not isinstance(record, dict):
        return ["must be a JSON object"]
    problems = _missing(record, ("email", "subscriptionId")) + _email_and_channel_problems(record)
    subscription_id = record.get("subscriptionId")
    if "subscriptionId" in record and not _is_integer(subscription_id):
        problems.append(f"subscriptionId: must be an integer; got {subscription_id!r}")
    return problems


def status_record_problems(record: Any, known_ids: set[int]) -> list[str]:
    """Why a status to set (a key, ``status``, optional ``timestamp``, ``source``,
    ``legalBasis``, ``legalBasisExplanation``) cannot be held."""
    problems = status_key_problems(record)
    if not isinstance(record, dict):
        return problems
    subscription_id = record.get("subscriptionId")
    if _is_integer(subscription_id) and int(subscription_id) not in known_ids:
        problems.append(
            f"subscriptionId: {subscription_id!r} is not one of the portal's subscriptions "
            f"({', '.join(map(str, sorted(known_ids)))})"
        )
    problems += _missing(record, ("status",)) + _status_problems(record)
    if record.get("legalBasis") is not None and record["legalBasis"] not in LEGAL_BASES:
        problems.append(f"legalBasis: must be one of {', '.join(LEGAL_BASES)}")
    if "source" in record and not (isinstance(record["source"], str) and record["source"]):
        problems.append("source: must be a non-empty string (HubSpot never answers a null source)")
    return problems + _timestamp_problems(record.get("timestamp"))


def wide_record_problems(record: Any) -> list[str]:
    """Why an opt-out of all email to set (``email``, ``status``, optional ``channel``,
    ``timestamp``) cannot be held."""
    if not isinstance(record, dict):
        return ["must be a JSON object"]
    return (
        _missing(record, ("email", "status"))
        + _email_and_channel_problems(record)
        + _status_problems(record)
        + _timestamp_problems(record.get("timestamp"))
    )


def _is_integer(value: Any) -> bool:
    """An int, or a string of one (JSON control clients may send either); never a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def raise_for_problems(what: str, records: list[Any], check: Callable[[Any], list[str]]) -> None:
    """Refuse a whole control request, naming each bad record by index, before changing anything."""
    described = [
        f"{what}[{index}]: " + "; ".join(problems)
        for index, record in enumerate(records)
        if (problems := check(record))
    ]
    if described:
        raise ValueError("; ".join(described))
