-- Extract's first step (candidates.sql is the second): the lookback window's changes with no
-- final row recorded for the same (changed_at, change_id), and the undated changes, into a
-- temporary table that candidates.sql reads. PostgreSQL gets its statistics (ANALYZE), so the
-- second step is planned for the night's rows, not for the window's (an anti-join's estimate is
-- the window's size).
-- Most of the window is done: both sides are ranges of (changed_at, change_id) indexes, the
-- source's and the ledger's final rows', so PostgreSQL merges them in index order (DuckDB hashes
-- the window's ids). Exact together with candidates.sql's check by change_id alone: this step
-- only rules out changes that do have a final row, by the changed_at the ledger recorded.
CREATE TEMPORARY TABLE hubspot_consent_sync_unseen AS
SELECT c.change_id, c.email, c.subscription_id, c.channel, c.status_state, c.legal_basis,
       c.legal_basis_explanation, c.changed_at
FROM consent_changes c
WHERE c.changed_at >= :lookback_start AND c.changed_at < :interval_end
  AND NOT EXISTS (
      SELECT 1
      FROM hubspot_consent_sync_results f
      WHERE f.outcome IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER')
        AND f.changed_at = c.changed_at AND f.change_id = c.change_id
        AND f.changed_at >= :lookback_start AND f.changed_at < :interval_end
  )
UNION ALL
-- Taken every time, so validation can quarantine them (candidates.sql drops the finished ones).
SELECT c.change_id, c.email, c.subscription_id, c.channel, c.status_state, c.legal_basis,
       c.legal_basis_explanation, c.changed_at
FROM consent_changes c
WHERE c.changed_at IS NULL;
