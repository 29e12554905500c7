"""Every knob of the sandbox, in one immutable value that can be swapped atomically while live."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOKEN = "sandbox-token"
READ_WRITE_SCOPE = "communication_preferences.read_write"
BATCH_WRITE_SCOPE = "communication_preferences.statuses.batch.write"

DEFAULT_DEFINITIONS: tuple[dict[str, Any], ...] = (
    {"id": 1001, "name": "Newsletter"},
    {"id": 1002, "name": "Product updates"},
    {"id": 1003, "name": "Events"},
)


@dataclass(frozen=True)
class SandboxSettings:
    """How the sandbox answers. Change it with :meth:`updated`, which validates.

    ``rate_limit_per_10s`` is the number of requests a token may make per rolling window of
    ``rate_window_ms`` (HubSpot's window is 10 s; tests shorten it). ``None`` disables it, like
    ``daily_limit=None``. ``reject_emails`` maps an email to the error its writes answer:
    ``{"status": 400, "category": "VALIDATION_ERROR", "message": "..."}``.
    """

    token: str = DEFAULT_TOKEN
    no_scope_token: str | None = "no-scope-token"
    batch_write_enabled: bool = True
    versions: tuple[str, ...] = ("v4", "2026-03", "2026-09")
    definitions: tuple[dict[str, Any], ...] = DEFAULT_DEFINITIONS
    partial_status: int = 207
    rate_limit_per_10s: int | None = None
    rate_window_ms: int = 10_000
    daily_limit: int | None = None
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    seed: int | None = None
    reject_emails: dict[str, dict[str, Any]] = field(default_factory=dict)

    def updated(self, **changes: Any) -> SandboxSettings:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown sandbox setting(s): {', '.join(unknown)}")
        if "versions" in changes:
            changes["versions"] = tuple(changes["versions"])
        if "definitions" in changes:
            changes["definitions"] = tuple(
                {**d, "id": int(d["id"]), "name": str(d["name"])} for d in changes["definitions"]
            )
        if "reject_emails" in changes:
            changes["reject_emails"] = {
                email.lower(): dict(rule) for email, rule in changes["reject_emails"].items()
            }
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def validate(self) -> None:
        if self.partial_status not in (200, 207):
            raise ValueError("partial_status must be 200 or 207")
        for name in ("error_rate", "drop_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.error_rate + self.drop_rate > 1.0:
            raise ValueError("error_rate + drop_rate must not exceed 1")
        for name in ("latency_ms", "latency_jitter_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("rate_limit_per_10s", "daily_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None")
        if self.rate_window_ms < 1:
            raise ValueError("rate_window_ms must be positive")
        for email, rule in self.reject_emails.items():
            if not isinstance(rule.get("status", 400), int):
                raise ValueError(f"reject_emails[{email!r}]: status must be an integer")

    def scopes_for(self, token: str | None) -> frozenset[str] | None:
        """The token's scopes, or None for a token HubSpot would not know."""
        if token is not None and token == self.token:
            batch = {BATCH_WRITE_SCOPE} if self.batch_write_enabled else set()
            return frozenset({READ_WRITE_SCOPE, *batch})
        if token is not None and token == self.no_scope_token:
            return frozenset()
        return None

    def definition(self, subscription_id: int) -> dict[str, Any] | None:
        return next((d for d in self.definitions if d["id"] == subscription_id), None)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
