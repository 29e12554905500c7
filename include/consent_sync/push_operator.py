"""PushBatchOperator: the push step, one planned batch of consent changes per mapped task.

The pipeline's operator, not the provider's: it stages ledger results through push.py, while the
provider's HubSpotHook stays free of ledger concerns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from hubspot_provider.exceptions import HubSpotAuthError
from hubspot_provider.hooks.hubspot import HubSpotHook


class PushBatchOperator(BaseOperator):
    """Send the status updates of one batch and stage one result per row as it goes.

    The batch's rows are read from staging; results are appended to the batch's results folder
    every few seconds, so a retry after a crash resumes with the rows not yet done.

    :param batch: batch descriptor from the plan: ``index``, ``rows_path``, ``results_path``,
        ``rows`` and, optionally, the run's ``resubscribe_guard`` choice (templated).
    :param hubspot_conn_id: the HubSpot connection.
    :param parallel_tasks: how many push tasks may run at once (their share of the rate limit).
    :param resubscribe_guard: read HubSpot first and skip SUBSCRIBED changes older than an
        opt-out HubSpot holds (``None``: the connection's ``resubscribe_guard`` extra decides).
    :param progress_every_s: seconds between progress lines in the task log.
    """

    template_fields: Sequence[str] = ("batch",)
    ui_color = "#ff7a59"

    def __init__(
        self,
        *,
        batch: dict[str, Any],
        hubspot_conn_id: str = HubSpotHook.default_conn_name,
        parallel_tasks: int = 1,
        resubscribe_guard: bool | None = None,
        progress_every_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch = batch
        self.hubspot_conn_id = hubspot_conn_id
        self.parallel_tasks = parallel_tasks
        self.resubscribe_guard = resubscribe_guard
        self.progress_every_s = progress_every_s

    def execute(self, context: Any) -> dict[str, int]:
        from include.consent_sync.push import push_batch

        hook = HubSpotHook(self.hubspot_conn_id, parallel_tasks=self.parallel_tasks)
        # The run's choice (DAG param, carried in the batch) wins over the operator's default,
        # which wins over the connection's extra.
        guard = next(
            (
                g
                for g in (self.batch.get("resubscribe_guard"), self.resubscribe_guard)
                if g is not None
            ),
            hook.settings.resubscribe_guard,
        )
        try:
            return push_batch(
                hook,
                rows_path=ObjectStoragePath(self.batch["rows_path"]),
                results_path=ObjectStoragePath(self.batch["results_path"]),
                label=f"push batch {self.batch['index']}",
                resubscribe_guard=guard,
                log=self.log,
                progress_every_s=self.progress_every_s,
            )
        except HubSpotAuthError as exc:
            # Every row would get the same answer: fail now, without Airflow retries.
            raise AirflowFailException(str(exc)) from exc
        finally:
            hook.close()
