"""Keep PII out of logs: emails are shown masked, never in full."""

from __future__ import annotations

import re


def mask_email(email: object) -> str:
    """Return ``j***@example.com`` for ``jane@example.com``; non-emails become ``***``."""
    if not isinstance(email, str) or "@" not in email:
        return "***"
    local, _, domain = email.strip().rpartition("@")
    return f"{local[:1]}***@{domain}" if local else f"***@{domain}"


_EMAIL = re.compile(r"[^\s@<>(),;:\"'\[\]]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def mask_emails_in(text: str) -> str:
    """Mask every email inside free text (error messages, alert text)."""
    return _EMAIL.sub(lambda match: mask_email(match.group(0)), text)
