"""PushBatchOperator: the push step, one planned batch of consent changes per mapped task.

The pipeline's operator, built on the provider's :class:`HubSpotBaseOperator` (the hook, and an
auth refusal failing the task at once): it stages ledger results through push.py, while the
provider stays free of ledger concerns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import ObjectStoragePath

from hubspot_provider.operators.hubspot import HubSpotBaseOperator


class PushBatchOperator(HubSpotBaseOperator):
    """Send the status updates of one batch and stage one result per row as it goes.

    The batch's rows are read from staging; results are appended to the batch's results folder
    every few seconds, so a retry after a crash resumes with the rows not yet done. A daily
    limit defers the rest of the batch (see push.py), so it does not fail the task.

    :param batch: batch descriptor from the plan: ``index``, ``rows_path``, ``results_path``,
        ``rows`` and, optionally, the run's ``resubscribe_guard`` choice and its
        ``daily_limit_marker`` path (templated).
    :param resubscribe_guard: read HubSpot first and skip SUBSCRIBED changes older than an
        opt-out HubSpot holds (``None``: the connection's ``resubscribe_guard`` extra decides).
    :param progress_every_s: seconds between progress lines in the task log.

    ``hubspot_conn_id`` and ``parallel_tasks`` (the push tasks' share of the rate limit): see
    :class:`HubSpotBaseOperator`.
    """

    template_fields: Sequence[str] = (*HubSpotBaseOperator.template_fields, "batch")

    def __init__(
        self,
        *,
        batch: dict[str, Any],
        resubscribe_guard: bool | None = None,
        progress_every_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch = batch
        self.resubscribe_guard = resubscribe_guard
        self.progress_every_s = progress_every_s

    def call_hubspot(self, context: Any) -> dict[str, int]:
        from include.consent_sync.push import push_batch

        # The run's choice (DAG param, carried in the batch) wins over the operator's default,
        # which wins over the connection's extra.
        guard = next(
            (
                g
                for g in (self.batch.get("resubscribe_guard"), self.resubscribe_guard)
                if g is not None
            ),
            self.hook.settings.resubscribe_guard,
        )
        return push_batch(
            self.hook,
            rows_path=ObjectStoragePath(self.batch["rows_path"]),
            results_path=ObjectStoragePath(self.batch["results_path"]),
            label=f"push batch {self.batch['index']}",
            resubscribe_guard=guard,
            log=self.log,
            progress_every_s=self.progress_every_s,
            daily_limit_marker=(
                ObjectStoragePath(self.batch["daily_limit_marker"])
                if self.batch.get("daily_limit_marker")
                else None
            ),
        )
