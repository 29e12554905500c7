"""The live switch: whether a run may send to HubSpot, or only plans and records DRY_RUN rows.

A new deployment starts disarmed, so the first runs (the scheduled run that "Unpause on trigger"
creates included) send nothing until someone sets the Airflow Variable ``consent_sync_live`` to
``true``. While disarmed, a run that names its contacts (param ``emails``) and leaves ``dry_run``
off still sends, to those contacts only: the README's "send one contact first" step.

The decision needs no Airflow: :func:`decide` takes the Variable's raw value and the run's params.
"""

from __future__ import annotations

from dataclasses import dataclass

VARIABLE = "consent_sync_live"
DISARMED = (
    f"DISARMED: nothing was sent; set Variable {VARIABLE}=true to go live "
    "(or trigger with emails set and dry_run off to send to those contacts only)"
)
DESCRIPTION = (
    "true: runs send to HubSpot. false or absent: DISARMED, runs only plan and record DRY_RUN "
    "rows (a run triggered with emails and dry_run off still sends to those contacts)."
)
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class UnclearSwitch(ValueError):
    """The Variable holds neither true nor false: a run stops before planning, without retries."""


def is_live(value: str | None) -> bool:
    """The Variable's value as a switch: absent means disarmed; anything unclear is an error."""
    if value is None or not value.strip():
        return False
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise UnclearSwitch(
        f'Variable {VARIABLE}={value!r} is neither true nor false; set it to "true" to send '
        'or "false" to plan only'
    )


@dataclass(frozen=True)
class Decision:
    """What a run does, and the line its plan log, ledger rows and summary show for it."""

    send: bool
    mode: str  # LIVE, CONTACTS ONLY, DRY RUN or DISARMED
    message: str

    @property
    def disarmed(self) -> bool:
        return self.mode == "DISARMED"


def decide(variable_value: str | None, *, dry_run: bool, emails: tuple[str, ...]) -> Decision:
    """Whether this run sends: never on ``dry_run``; when live, always; when disarmed, only to
    the contacts the run names in ``emails``."""
    if dry_run:
        return Decision(False, "DRY RUN", "DRY RUN (param dry_run): nothing is sent")
    if is_live(variable_value):
        return Decision(True, "LIVE", f"LIVE (Variable {VARIABLE}=true): changes are sent")
    if emails:
        return Decision(
            True,
            "CONTACTS ONLY",
            f"DISARMED, but this run names {len(emails)} contact(s) in emails: sending to "
            f"those only; set Variable {VARIABLE}=true to go live for everyone",
        )
    return Decision(False, "DISARMED", DISARMED)
