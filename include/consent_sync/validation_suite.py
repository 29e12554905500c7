"""The GX Core expectation suite for ``consent_changes`` rows, defined in code.

Each expectation carries the short reason text that ends up in the ledger's ``error_message``. The
order of :func:`checks` is the order reasons are listed in, so messages are stable across runs.

GX is imported lazily (:func:`import_gx`): importing it takes seconds, and this module is imported by
the validation task only; it switches analytics and INFO logging off, and :func:`run_suite` the
progress bars.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from include.consent_sync.contract import CHANNELS, LEGAL_BASES, STATUS_STATES

# Column the suite validates in place of "legal_basis_explanation is required when legal_basis is
# set": the trimmed explanation where legal_basis is set ("" when it is missing), null elsewhere.
# GX skips nulls in column map expectations, so rows without a legal basis are not checked.
EXPLANATION_IF_BASIS_SET = "_explanation_if_legal_basis_set"

# RFC 5322 dot-atom, restricted to ASCII: atext characters (letters, digits and
# ! # $ % & ' * + - / = ? ^ _ ` { | } ~) in dot-separated runs, one "@", then a domain of labels
# made of letters, digits and inner hyphens (at most 63 characters each) and an alphabetic TLD of
# 2+ letters. Whitespace, control characters, quotes, brackets and a trailing dot cannot match.
# Anchored with "\Z", not "$": "$" also matches before a trailing newline, and with it pandas 3
# falls back from RE2 to Python's re (6x slower); pandas rewrites "\Z" to RE2's "\z".
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}\Z"

MAX_EMAIL_LENGTH = 254
MAX_CHANGE_ID_LENGTH = 255
MAX_EXPLANATION_LENGTH = 1000


@dataclass(frozen=True)
class Check:
    """One expectation of the suite and how to report it.

    :param reason: the text stored in ``error_message`` for rows failing it.
    :param column: the column GX validates.
    :param kind: the GX Core expectation class name (in ``great_expectations.expectations``).
    :param kwargs: the expectation's own arguments besides ``column``.
    :param source_column: the source column shown in the report's sample of failing values.
    """

    reason: str
    column: str
    kind: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    source_column: str | None = None

    @property
    def sample_column(self) -> str:
        return self.source_column or self.column


def checks(now: datetime) -> tuple[Check, ...]:
    """The suite's checks in reporting order; ``now`` bounds ``changed_at``."""
    states = "/".join(STATUS_STATES)
    return (
        Check("change_id: missing", "change_id", "ExpectColumnValuesToNotBeNull"),
        Check(
            f"change_id: longer than {MAX_CHANGE_ID_LENGTH} characters",
            "change_id",
            "ExpectColumnValueLengthsToBeBetween",
            (("max_value", MAX_CHANGE_ID_LENGTH),),
        ),
        Check("change_id: duplicated in this batch", "change_id", "ExpectColumnValuesToBeUnique"),
        Check("email: missing", "email", "ExpectColumnValuesToNotBeNull"),
        Check(
            f"email: longer than {MAX_EMAIL_LENGTH} characters",
            "email",
            "ExpectColumnValueLengthsToBeBetween",
            (("max_value", MAX_EMAIL_LENGTH),),
        ),
        Check(
            "email: malformed",
            "email",
            "ExpectColumnValuesToMatchRegex",
            (("regex", EMAIL_PATTERN),),
        ),
        Check("subscription_id: missing", "subscription_id", "ExpectColumnValuesToNotBeNull"),
        Check(
            "subscription_id: not a positive integer",
            "subscription_id",
            "ExpectColumnValuesToBeBetween",
            (("min_value", 1),),
        ),
        Check("channel: missing", "channel", "ExpectColumnValuesToNotBeNull"),
        Check(
            f"channel: not {'/'.join(CHANNELS)}",
            "channel",
            "ExpectColumnValuesToBeInSet",
            (("value_set", list(CHANNELS)),),
        ),
        Check("status_state: missing", "status_state", "ExpectColumnValuesToNotBeNull"),
        Check(
            f"status_state: not one of {states}",
            "status_state",
            "ExpectColumnValuesToBeInSet",
            (("value_set", list(STATUS_STATES)),),
        ),
        Check(
            "legal_basis: not one of HubSpot's legal bases",
            "legal_basis",
            "ExpectColumnValuesToBeInSet",
            (("value_set", [*LEGAL_BASES, ""]),),
        ),
        Check(
            "legal_basis_explanation: missing while legal_basis is set",
            EXPLANATION_IF_BASIS_SET,
            "ExpectColumnValueLengthsToBeBetween",
            (("min_value", 1),),
            source_column="legal_basis_explanation",
        ),
        Check(
            f"legal_basis_explanation: longer than {MAX_EXPLANATION_LENGTH} characters",
            "legal_basis_explanation",
            "ExpectColumnValueLengthsToBeBetween",
            (("max_value", MAX_EXPLANATION_LENGTH),),
        ),
        Check("changed_at: missing", "changed_at", "ExpectColumnValuesToNotBeNull"),
        Check(
            "changed_at: in the future",
            "changed_at",
            "ExpectColumnValuesToBeBetween",
            (("max_value", now),),
        ),
    )


def import_gx():
    """Import GX Core with analytics off and its progress bars and INFO logging kept quiet."""
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return gx


def build_suite(all_checks: tuple[Check, ...]):
    """An ``ExpectationSuite`` of ``all_checks``; each expectation's ``meta`` holds its position."""
    gx = import_gx()
    import great_expectations.expectations as gxe

    expectations = [
        getattr(gxe, check.kind)(
            column=check.column,
            meta={"check": position, "reason": check.reason},
            **dict(check.kwargs),
        )
        for position, check in enumerate(all_checks)
    ]
    return gx.ExpectationSuite(name="consent_changes_rows", expectations=expectations)


class SuiteError(RuntimeError):
    """GX could not evaluate an expectation: the run must stop rather than let rows through."""


def _raised_exception(info: Any) -> str | None:
    """The message of an exception GX caught while evaluating an expectation, else None.

    GX 1.x reports ``{"raised_exception": ..., "exception_message": ...}`` for some failures and,
    for metric errors, the same dict nested under each failed metric's id. A result with an
    exception has an empty ``result``: reading it naively would pass every row.
    """
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def run_suite(frame, all_checks: tuple[Check, ...]) -> list[list[int]]:
    """Validate ``frame`` (RangeIndex) and return, per check, the positions of failing rows.

    Uses an ephemeral context and ``result_format`` COMPLETE; the row split relies on
    ``unexpected_index_list`` (index labels, which are row positions under a RangeIndex).
    """
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # The supported switch: the context's progress_bars setting (tqdm's TQDM_DISABLE does not help,
    # GX passes `disable=` explicitly).
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch_definition = (
        context.data_sources.add_pandas("consent_changes")
        .add_dataframe_asset("candidates")
        .add_batch_definition_whole_dataframe("whole_batch")
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    outcome = batch.validate(build_suite(all_checks), result_format={"result_format": "COMPLETE"})

    failing: list[list[int] | None] = [None] * len(all_checks)
    for result in outcome.results:
        position = result.expectation_config.meta["check"]
        check = all_checks[position]
        problem = _raised_exception(result.exception_info)
        if problem is not None:
            raise SuiteError(f"validation could not evaluate '{check.reason}': {problem}")
        details = result.result or {}
        if "unexpected_count" not in details:
            raise SuiteError(f"validation of '{check.reason}' returned no unexpected_count")
        indexes = details.get("unexpected_index_list") or []
        if len(indexes) != details["unexpected_count"]:
            raise SuiteError(
                f"validation of '{check.reason}' reported {details.get('unexpected_count')} "
                f"failing rows but listed {len(indexes)}"
            )
        failing[position] = indexes
    missing = [all_checks[i].reason for i, value in enumerate(failing) if value is None]
    if missing:
        raise SuiteError(f"validation returned no result for: {', '.join(missing)}")
    return failing  # type: ignore[return-value]
