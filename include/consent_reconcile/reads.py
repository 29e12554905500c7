"""Read one batch of contacts back from HubSpot, staging every answer as it comes.

Each chunk of contacts (the connection's ``batch_size``, 100 by default) costs two requests: a
batch read of their statuses and one of their opt-outs of all email; several chunks are in
flight at once, paced by the hook. Each chunk's answers are appended to the task's journal in
the batch's staging folder as one durable write, so a retried task reads only the contacts
still missing.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from hubspot_provider.exceptions import (
    HubSpotAuthError,
    HubSpotDailyLimitError,
    HubSpotError,
    HubSpotRejectedError,
    HubSpotTransientError,
)
from include.consent_reconcile.contract import READ, READ_FAILED, UNKNOWN_CONTACT, read_schema
from include.consent_sync.masking import mask_email
from include.consent_sync.progress import Progress
from include.consent_sync.staging import ResultJournal, read_table


def _statuses(found) -> list[dict[str, Any]]:
    return [
        {
            "subscription_id": s.subscription_id,
            "channel": s.channel,
            "status": s.status,
            "timestamp": s.timestamp,
            "source": s.source,
        }
        for s in found.statuses
    ]


def _wide_statuses(found) -> list[dict[str, Any]]:
    """Opt-outs of all email in the statuses' shape: no subscription; the source is the
    ``wideStatusType`` (PORTAL_WIDE or BUSINESS_UNIT_WIDE)."""
    return [
        {
            "subscription_id": None,
            "channel": w.channel,
            "status": w.status,
            "timestamp": w.timestamp,
            "source": w.wide_status_type,
        }
        for w in found.wide_statuses
    ]


def answer_row(email: str, statuses, wide) -> dict[str, Any]:
    """One contact's staged read from its two answers (:class:`ContactStatuses` each).

    A per-contact error in either answer (a 207's errors[]) makes the read FAILED: half a view
    of HubSpot could wrongly be a MATCH. A contact either answer does not know is UNKNOWN_CONTACT.
    """
    error = statuses.error or wide.error
    if error:
        return {"email": email, "answer": READ_FAILED, "error": error}
    if not (statuses.known and wide.known):
        return {"email": email, "answer": UNKNOWN_CONTACT}
    return {
        "email": email,
        "answer": READ,
        "statuses": _statuses(statuses),
        "wide_statuses": _wide_statuses(wide),
    }


def staged_contacts(results_path) -> set[str]:
    """Contacts with a usable staged answer: a retry reads only the others (FAILED included)."""
    staged = ResultJournal(results_path, read_schema()).read()
    return {
        row["email"]
        for row in staged.select(["email", "answer"]).to_pylist()
        if row["answer"] != READ_FAILED
    }


def _read_chunk(hook, chunk: list[str], label: str, log: logging.Logger) -> list[dict[str, Any]]:
    """One chunk's two reads as staged rows; a read that fails for good makes them FAILED."""
    try:
        statuses = hook.read_statuses(chunk)
        wide = hook.read_unsubscribe_all(chunk)
    except (HubSpotTransientError, HubSpotRejectedError) as exc:
        log.warning("%s: reading %d contacts failed: %s", label, len(chunk), exc)
        return [{"email": email, "answer": READ_FAILED, "error": str(exc)} for email in chunk]
    return [answer_row(email, statuses[email], wide[email]) for email in chunk]


def read_batch(
    hook, *, contacts_path, results_path, label: str, log: logging.Logger, progress_every_s=10.0
) -> dict[str, int]:
    """Read every contact of a batch through ``hook`` (a HubSpotHook); counts per answer.

    Up to the connection's ``max_in_flight`` chunks are read at once (latency would otherwise
    keep a task below its share of the rate limit), each staged as soon as it is answered.
    A chunk whose read fails for good (5xx or no answer after the hook's retries, a 4xx for the
    whole request, an answer not COMPLETE) is staged FAILED and the batch goes on; HubSpot's
    daily limit stops the batch (the contacts not read stay unstaged). Both end UNREAD, never
    MATCH. 401/403 raise once the chunks in flight are staged.
    """
    contacts = read_table(contacts_path)["email"].to_pylist()
    parts = ResultJournal(results_path, read_schema())
    done = staged_contacts(results_path)
    todo = [email for email in contacts if email not in done]
    progress = Progress(label, len(contacts), log, every_s=progress_every_s, done=len(done))
    if done:
        log.info("%s: resuming, %d of %d contacts already read", label, len(done), len(contacts))
    size, in_flight = hook.settings.batch_size, hook.settings.max_in_flight
    # Open the session here: in a task, the connection lookup must not happen in a pool thread.
    hook.get_conn()
    chunks = iter([todo[i : i + size] for i in range(0, len(todo), size)])
    stop: HubSpotError | None = None
    with (
        ThreadPoolExecutor(in_flight, thread_name_prefix="hubspot-read") as pool,
        parts.writer() as journal,
    ):
        pending: set[Future] = set()
        while True:
            while stop is None and len(pending) < in_flight:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                pending.add(pool.submit(_read_chunk, hook, chunk, label, log))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    rows = future.result()
                except (HubSpotDailyLimitError, HubSpotAuthError) as exc:
                    stop = stop or exc
                    continue
                journal.write_rows(rows)
                for row in rows:
                    progress.advance(row["answer"])
                # A 207's per-contact errors, a few per chunk (a failed chunk was logged whole).
                refused = [row for row in rows if row["answer"] == READ_FAILED]
                for row in refused[:5] if len(refused) < len(rows) else []:
                    log.info(
                        "%s: HubSpot refused reading %s: %s",
                        label,
                        mask_email(row["email"]),
                        row["error"],
                    )
    log.info("%s", progress.line())
    if isinstance(stop, HubSpotAuthError):
        raise stop
    if stop is not None:
        log.warning(
            "%s: HubSpot's daily limit is reached (%s): %d contacts not read; they are UNREAD "
            "in this reconcile",
            label,
            stop,
            len(contacts) - progress.done,
        )
    return dict(Counter(ResultJournal(results_path, read_schema()).read()["answer"].to_pylist()))
