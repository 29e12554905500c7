-- candidates.sql as it was before it followed the night's keys (a copy: the reference the new
-- query must agree with on every rule; it reads the sync_contact_filter temp table).
-- The changes a run considers: changed before the interval's end and within the lookback window,
-- with no final outcome in the ledger yet (or, with resync, the latest change of keys changed in
-- the interval). A re-run of a run reconsiders only what it left unfinished: its final rows stay
-- as they are (see delete_unfinished_run_rows.sql). Rows with no changed_at are taken too, so
-- validation can quarantine them.
-- Each candidate carries what planning needs from the warehouse: the latest change of its key in
-- the whole table (a change already superseded after the interval is never sent, so a backfill
-- cannot revert a newer consent even while a newer run pushes), how many runs it already FAILED
-- in, the newest SYNCED change of its key, and when this pipeline sent the key UNSUBSCRIBED if
-- that was its last write to the key (the resubscribe guard must not mistake it for an opt-out).
-- The latest change of each key comes from one window over the source rows (no self-join): on
-- PostgreSQL a CTE read twice is materialised without statistics, and the planner then joined
-- it back with a nested loop (hours at a million rows). NULLS LAST is explicit because the
-- engines' default null order for DESC differs (PostgreSQL: first, DuckDB: last).
WITH source AS (
    SELECT c.change_id, c.email, c.subscription_id, c.channel, c.status_state, c.legal_basis,
           c.legal_basis_explanation, c.changed_at, LOWER(TRIM(c.email)) AS key_email,
           CASE
               WHEN c.email IS NOT NULL AND c.subscription_id IS NOT NULL AND c.channel IS NOT NULL
               THEN FIRST_VALUE(CASE WHEN c.changed_at IS NOT NULL THEN c.change_id END) OVER (
                        PARTITION BY LOWER(TRIM(c.email)), c.subscription_id, c.channel
                        ORDER BY c.changed_at DESC NULLS LAST, c.change_id DESC NULLS LAST
                    )
           END AS key_latest_change_id
    FROM consent_changes c
),
finished AS (
    SELECT change_id, dag_run_id
    FROM hubspot_consent_sync_results
    WHERE outcome IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER')
),
failures AS (
    SELECT change_id, COUNT(DISTINCT dag_run_id) AS failed_runs
    FROM hubspot_consent_sync_results
    WHERE outcome = 'FAILED' AND dag_run_id <> :dag_run_id
    GROUP BY change_id
),
synced AS (
    SELECT LOWER(TRIM(email)) AS key_email, subscription_id, channel,
           MAX(changed_at) AS key_synced_changed_at,
           CASE
               WHEN MAX(sent_at) FILTER (WHERE status_state = 'UNSUBSCRIBED') = MAX(sent_at)
               THEN MAX(sent_at)
           END AS key_sent_unsubscribed_at
    FROM hubspot_consent_sync_results
    WHERE outcome = 'SYNCED'
    GROUP BY LOWER(TRIM(email)), subscription_id, channel
)
SELECT s.change_id, s.email, s.subscription_id, s.channel, s.status_state, s.legal_basis,
       s.legal_basis_explanation, s.changed_at,
       s.key_latest_change_id,
       COALESCE(f.failed_runs, 0) AS failed_runs,
       y.key_synced_changed_at, y.key_sent_unsubscribed_at
FROM source s
LEFT JOIN failures f ON f.change_id = s.change_id
LEFT JOIN synced y
       ON y.key_email = s.key_email AND y.subscription_id = s.subscription_id AND y.channel = s.channel
WHERE ((s.changed_at >= :lookback_start AND s.changed_at < :interval_end) OR s.changed_at IS NULL)
  AND (
        NOT EXISTS (SELECT 1 FROM finished x WHERE x.change_id = s.change_id)
        OR (:resync AND s.changed_at >= :interval_start AND s.key_latest_change_id = s.change_id
            AND NOT EXISTS (
                SELECT 1 FROM finished x WHERE x.change_id = s.change_id AND x.dag_run_id = :dag_run_id
            ))
      )
  AND (:all_contacts OR s.key_email IN (SELECT email FROM sync_contact_filter))
ORDER BY s.changed_at, s.change_id;
