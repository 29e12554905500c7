"""What to tell a person about a run, as text: pure functions, sent by ``runtime.send_alert``.

A run needs a person when it failed, or when it succeeded but: HubSpot REJECTED more than a share
of the changes sent, rows ended FAILED or DEFERRED, HubSpot's DAILY limit was reached, the INVALID
share rose above a warning level (below the gate that stops a run), or several nights in a row
sent nothing because the sync ran in dry-run or disarmed. Texts carry counts, the interval, the
top reasons and masked emails only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from include.consent_sync.masking import mask_email, mask_emails_in

SUBJECT_PREFIX = "[hubspot_consent_sync]"


@dataclass(frozen=True)
class AlertSettings:
    """From the Variable ``consent_sync_alerts`` (JSON; see README, Alerts)."""

    smtp_conn_id: str | None = None
    email_to: tuple[str, ...] = ()
    email_from: str | None = None
    slack_webhook_conn_id: str | None = None
    rejected_share: float = 0.01
    invalid_warning_share: float = 0.02
    idle_nights: int = 3

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AlertSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(
                f"Variable consent_sync_alerts: unknown keys {sorted(unknown)}; "
                f"expected some of {sorted(known)}"
            )
        values = dict(values)
        if isinstance(values.get("email_to"), str):
            values["email_to"] = (values["email_to"],)
        settings = cls(**{**values, "email_to": tuple(values.get("email_to") or ())})
        for name in ("rejected_share", "invalid_warning_share"):
            if not 0 <= float(getattr(settings, name)) <= 1:
                raise ValueError(f"Variable consent_sync_alerts: {name} must be between 0 and 1")
        if int(settings.idle_nights) < 1:
            raise ValueError("Variable consent_sync_alerts: idle_nights must be at least 1")
        if settings.smtp_conn_id and not settings.email_to:
            raise ValueError("Variable consent_sync_alerts: smtp_conn_id needs email_to")
        return settings


@dataclass(frozen=True)
class Alert:
    subject: str
    body: str


@dataclass(frozen=True)
class Reason:
    """A group of a run's rows that did not sync: outcome, category, how many, one example."""

    outcome: str
    category: str | None
    rows: int
    example_email: str | None = None


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _sent_nothing(record: Mapping[str, Any]) -> bool:
    return record.get("state") == "success" and not record["synced"] and record["dry_run"] > 0


def findings(
    record: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]], settings: AlertSettings
) -> list[str]:
    """Why a succeeded run needs a person (empty: it does not).

    :param record: the run's record (``hubspot_consent_sync_runs`` columns).
    :param earlier: the records of the runs before it, newest first.
    """
    found = []
    sent = record["synced"] + record["rejected"] + record["failed"]
    if _share(record["rejected"], sent) > settings.rejected_share:
        found.append(
            f"REJECTED: {record['rejected']:,} of {sent:,} changes sent "
            f"({_share(record['rejected'], sent):.1%}, above {settings.rejected_share:.1%})"
        )
    if record["failed"]:
        found.append(f"FAILED: {record['failed']:,} changes (the next run retries them)")
    if record["deferred"]:
        found.append(f"DEFERRED: {record['deferred']:,} changes not sent (the next run sends them)")
    if record.get("daily_limit_reached"):
        found.append("HubSpot's DAILY API limit was reached: sending stopped for today")
    invalid_share = _share(record["invalid"], record["changes"])
    if invalid_share > settings.invalid_warning_share:
        found.append(
            f"INVALID: {record['invalid']:,} of {record['changes']:,} changes "
            f"({invalid_share:.1%}, above the warning level {settings.invalid_warning_share:.1%})"
        )
    idle = 0
    for run in [record, *earlier]:
        if not _sent_nothing(run):
            break
        idle += 1
    if idle >= settings.idle_nights:
        found.append(
            f"{idle} runs in a row sent nothing to HubSpot (dry run or disarmed): "
            f"{record['dry_run']:,} changes only planned tonight"
        )
    return found


def compose(
    record: Mapping[str, Any],
    earlier: Sequence[Mapping[str, Any]],
    reasons: Sequence[Reason],
    settings: AlertSettings,
) -> Alert | None:
    """The alert for a run, or None when the run needs nobody."""
    if record["state"] == "failed":
        subject = f"{SUBJECT_PREFIX} run failed in {record.get('failed_task') or 'a task'}"
        problems = [
            f"Task {record.get('failed_task') or '(unknown)'} failed: "
            f"{record.get('failure_reason') or 'see its log'}"
        ]
    else:
        problems = findings(record, earlier, settings)
        if not problems:
            return None
        subject = f"{SUBJECT_PREFIX} a run needs a look: {problems[0].split(':')[0]}"
    counts = ", ".join(
        f"{name.upper()} {record[name]:,}"
        for name in (
            "synced",
            "failed",
            "rejected",
            "invalid",
            "skipped_superseded",
            "skipped_hubspot_newer",
            "deferred",
            "dry_run",
        )
        if record[name]
    )
    lines = [
        f"Run {record['dag_run_id']} ({record.get('run_type') or 'run'}), "
        f"interval {_iso(record['interval_start'])} → {_iso(record['interval_end'])}",
        f"State: {record['state']}. {record['changes']:,} changes: {counts or 'none'}.",
        *(f"- {problem}" for problem in problems),
    ]
    if reasons:
        lines.append("Top reasons:")
        lines.extend(
            f"- {r.outcome} {r.category or '(no category)'}: {r.rows:,} rows"
            + (f", e.g. {mask_email(r.example_email)}" if r.example_email else "")
            for r in reasons
        )
    if record.get("ui_url"):
        lines.append(f"Run in Airflow: {record['ui_url']}")
    lines.append(
        f"SQL: SELECT * FROM hubspot_consent_sync_results WHERE dag_run_id = '{record['dag_run_id']}'"
    )
    return Alert(mask_emails_in(subject), mask_emails_in("\n".join(lines)))


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def compose_deadline(dag_run: Mapping[str, Any], deadline_time: Any, ui_url: str) -> Alert:
    """The alert for a run still unfinished at its deadline (from the Deadline Alert's context).

    :param dag_run: the run as Airflow's REST API shows it (``dag_run_id``, ``run_type``,
        ``state``, ``data_interval_start``/``_end``, ``queued_at``, ``start_date``).
    """
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id") or "(unknown run)"
    lines = [
        f"Run {run_id} ({dag_run.get('run_type') or 'run'}) has not finished by its deadline "
        f"{_iso(deadline_time)}; it is {dag_run.get('state') or 'still going'}.",
        f"Interval {_iso(dag_run.get('data_interval_start'))} → "
        f"{_iso(dag_run.get('data_interval_end'))}; queued at {_iso(dag_run.get('queued_at'))}, "
        f"started at {_iso(dag_run.get('start_date'))}.",
        "Check whether it waits for its turn (wait_for_turn), paces at HubSpot's limit (push), "
        "or is stuck; its ledger rows appear when load_results runs.",
        f"Run in Airflow: {ui_url}",
    ]
    return Alert(
        f"{SUBJECT_PREFIX} run not finished by its deadline: {run_id}",
        mask_emails_in("\n".join(lines)),
    )
