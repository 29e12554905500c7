"""What HubSpot refuses as malformed before looking at any contact."""

from __future__ import annotations

from typing import Any

# HubSpot's enums are the contract's: one list serves the pipeline and its sandbox.
from include.consent_sync.contract import CHANNELS, LEGAL_BASES, STATUS_STATES

Problem = tuple[str, str]  # (field, message)


def is_plausible_email(value: Any) -> bool:
    """One ``@`` with something on both sides, no whitespace, at most 254 characters."""
    if not isinstance(value, str) or len(value) > 254 or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    return bool(local) and bool(domain) and not any(c.isspace() for c in value)


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
