"""HubSpot's JSON answer shapes: the error body, the 429 body and the batch-style envelope."""

from __future__ import annotations

import uuid
from typing import Any

from dev.hubspot_sandbox.state import utc_iso

DEFAULT_CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    409: "CONFLICT",
    422: "VALIDATION_ERROR",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
}

DEFAULT_MESSAGES = {
    400: "Invalid input.",
    401: (
        "Authentication credentials not found or invalid. This API supports OAuth 2.0 and "
        "private app access tokens."
    ),
    403: "This app hasn't been granted all required scopes to make this call.",
    404: "Resource not found.",
    409: "Conflict.",
    422: "Unprocessable entity.",
    500: "internal error",
    502: "Bad gateway: the upstream service did not answer.",
    503: "Service temporarily unavailable; try again later.",
}

RATE_LIMIT_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "DAILY": "You have reached your daily limit.",
}


def error_body(
    status: int,
    message: str | None = None,
    category: str | None = None,
    errors: list[dict] | None = None,
) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message or DEFAULT_MESSAGES.get(status, "error"),
        "correlationId": str(uuid.uuid4()),
        "category": category or DEFAULT_CATEGORIES.get(status, "ERROR"),
        "errors": errors or [],
    }


def missing_scope_body(scope: str) -> dict[str, Any]:
    return error_body(
        403,
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
    )


def rate_limit_body(policy: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": RATE_LIMIT_MESSAGES.get(policy, f"You have reached your {policy} limit."),
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
    }


def item_error(
    message: str, category: str, emails: list[Any], subscription_ids: list[Any] | None = None
) -> dict[str, Any]:
    """One failed input of a batch in the ``StandardError`` shape (``errors`` and ``links`` are
    required there), with the context clients use to find the input again."""
    context = {"subscriberIdString": [str(e) for e in emails]}
    if subscription_ids is not None:
        context["subscriptionId"] = [str(i) for i in subscription_ids]
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


def envelope(results: list[dict], errors: list[dict], requested_at: str) -> dict[str, Any]:
    """The batch-response envelope HubSpot wraps v4 status answers in, single writes included."""
    completed_at = utc_iso()
    return {
        "status": "COMPLETE",
        "results": results,
        "errors": errors,
        "numErrors": len(errors),
        "requestedAt": requested_at,
        "startedAt": requested_at,
        "completedAt": completed_at,
        "links": {},
    }


def definition_json(definition: dict[str, Any]) -> dict[str, Any]:
    """A subscription definition as HubSpot lists it (ids are strings there)."""
    fixed_time = "2024-01-01T00:00:00.000Z"
    return {
        "description": "",
        "purpose": "Marketing",
        "communicationMethod": "Email",
        "isActive": True,
        "isDefault": False,
        "isInternal": False,
        "createdAt": fixed_time,
        "updatedAt": fixed_time,
        "businessUnitId": 0,
        **definition,
        "id": str(definition["id"]),
    }
