"""The email of a consent key, ``LOWER(TRIM(BOTH ' ' FROM email))`` as the SQL files write it,
in its one Python and one Arrow form: all three give the same strings.

Only spaces (U+0020) are trimmed, not tabs, newlines or no-break spaces: ``str.strip()`` would
trim more, and so would DuckDB's bare ``TRIM(email)`` (Unicode spaces, which PostgreSQL's keeps),
and two spellings of one contact would then be one key here and two there. Case folding beyond
ASCII follows each engine (PostgreSQL's depends on the database's locale); emails are ASCII in
practice.
"""

from __future__ import annotations


def key_email(email: str) -> str:
    """One email, as the SQL's key expression gives it."""
    return email.strip(" ").lower()


def key_emails(emails):
    """An Arrow array of emails, as the SQL's key expression gives them (nulls stay null)."""
    import pyarrow.compute as pc

    return pc.utf8_lower(pc.utf8_trim(emails, characters=" "))
