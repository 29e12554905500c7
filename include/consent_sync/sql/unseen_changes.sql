-- Extract's first step (candidates.sql is the second): the changes of the lookback window and the
-- undated ones that have no final outcome in the ledger yet, into a temporary table that
-- candidates.sql reads. PostgreSQL gets its statistics (ANALYZE), so that the second step is
-- planned for the night's rows: the estimate of an anti-join against the ledger is anything from
-- one row to the window's size, and either sends later lookups into nested or whole-table loops.
-- Most of the window is done: both sides are ranges of (changed_at, change_id), which the
-- source's index and the ledger's partial index of final rows serve on PostgreSQL (the planner
-- chooses between merging them and a hash anti-join; DuckDB hashes). This only rules out changes
-- that do have a final row, by the changed_at the ledger recorded; the DELETE below is the exact
-- test.
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
-- Taken every time, so validation can quarantine them (the DELETE drops the finished ones).
SELECT c.change_id, c.email, c.subscription_id, c.channel, c.status_state, c.legal_basis,
       c.legal_basis_explanation, c.changed_at
FROM consent_changes c
WHERE c.changed_at IS NULL;

-- The exact test, by change_id alone (a change the user re-dated since it finished), on the few
-- rows left: the ledger's change_id index on PostgreSQL.
DELETE FROM hubspot_consent_sync_unseen
WHERE EXISTS (
    SELECT 1
    FROM hubspot_consent_sync_results f
    WHERE f.outcome IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER')
      AND f.change_id = hubspot_consent_sync_unseen.change_id
);
