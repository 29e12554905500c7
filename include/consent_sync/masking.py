"""Keep PII out of logs: emails are shown masked, never in full."""

from __future__ import annotations


def mask_email(email: object) -> str:
    """Return ``j***@example.com`` for ``jane@example.com``; non-emails become ``***``."""
    if not isinstance(email, str) or "@" not in email:
        return "***"
    local, _, domain = email.strip().rpartition("@")
    return f"{local[:1]}***@{domain}" if local else f"***@{domain}"
