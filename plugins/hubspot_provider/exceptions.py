"""Errors the HubSpot hook raises, one class per thing a caller does differently.

Modelled on the Slack provider: callers catch :class:`HubSpotError` or the one subclass they can
act on, never a builtin ``ConnectionError``/``ValueError`` that a library bug could raise too.
"""

from __future__ import annotations


class HubSpotError(Exception):
    """Any answer (or lack of one) from HubSpot that a call cannot turn into a result.

    :param message: what happened and what to do, without the token.
    :param http_status: the HTTP status of HubSpot's answer, if there was one.
    :param category: HubSpot's error category (``VALIDATION_ERROR``, ``RATE_LIMIT`` ...).
    :param correlation_id: HubSpot's id of the request, for their support.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.category = category
        self.correlation_id = correlation_id


class HubSpotAuthError(HubSpotError):
    """401, or no token: every request would get the same answer, so stop at once."""


class HubSpotScopeError(HubSpotAuthError):
    """403: the token lacks a scope the call needs (an auth problem too: stop at once)."""


class HubSpotDailyLimitError(HubSpotError):
    """429 with policy DAILY: nothing more can be sent until the account's midnight."""


class HubSpotTransientError(HubSpotError):
    """No usable answer after every attempt (5xx, timeouts, dropped connections), or an answer
    whose ``status`` is not COMPLETE: the same call may succeed later."""


class HubSpotRejectedError(HubSpotError):
    """A 4xx for the whole request: HubSpot refuses it as sent; retrying it will not help."""
