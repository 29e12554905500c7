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
-- The cost follows the night's candidates, not the history: the night's rows are found by time
-- (an index on changed_at), and everything else is looked up for their change ids and keys only
-- (the ledger's change_id index, the key expression index on consent_changes, the key state's
-- primary key), never by aggregating a whole table. The finished test is a plain join, not a
-- NOT EXISTS inside an OR, which PostgreSQL can only run as a scan per row.
WITH windowed AS (
    SELECT c.change_id, c.email, c.subscription_id, c.channel, c.status_state, c.legal_basis,
           c.legal_basis_explanation, c.changed_at, LOWER(TRIM(c.email)) AS key_email
    FROM consent_changes c
    WHERE ((c.changed_at >= :lookback_start AND c.changed_at < :interval_end)
           OR c.changed_at IS NULL)
      AND (:all_contacts OR LOWER(TRIM(c.email)) IN (SELECT UNNEST(CAST(:emails AS TEXT[]))))
),
ledger_rows AS (
    SELECT r.change_id, r.dag_run_id, r.outcome,
           CASE
               WHEN r.outcome IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER')
               THEN 1 ELSE 0
           END AS final
    FROM hubspot_consent_sync_results r
    WHERE r.change_id IN (SELECT w.change_id FROM windowed w)
),
history AS (
    SELECT change_id,
           COUNT(DISTINCT CASE
                              WHEN outcome = 'FAILED' AND dag_run_id <> :dag_run_id
                              THEN dag_run_id
                          END) AS failed_runs,
           MAX(final) AS finished,
           MAX(CASE WHEN dag_run_id = :dag_run_id THEN final ELSE 0 END) AS finished_here
    FROM ledger_rows
    GROUP BY change_id
),
considered AS (
    SELECT w.*, COALESCE(h.failed_runs, 0) AS failed_runs, COALESCE(h.finished, 0) AS finished
    FROM windowed w
    LEFT JOIN history h ON h.change_id = w.change_id
    WHERE COALESCE(h.finished, 0) = 0
       OR (:resync AND w.changed_at >= :interval_start AND COALESCE(h.finished_here, 0) = 0)
),
-- The considered keys, each with its oldest considered change: a newer change of the key (the
-- only kind that can be its latest) is at least that recent. A key whose considered changes
-- all lack a changed_at is searched whole.
considered_keys AS (
    SELECT key_email, subscription_id, channel, MIN(changed_at) AS since
    FROM considered
    WHERE email IS NOT NULL AND subscription_id IS NOT NULL AND channel IS NOT NULL
    GROUP BY key_email, subscription_id, channel
),
-- NULLS LAST is explicit because the engines' default null order for DESC differs
-- (PostgreSQL: first, DuckDB: last).
key_latest AS (
    SELECT key_email, subscription_id, channel, change_id AS key_latest_change_id
    FROM (
        SELECT k.key_email, k.subscription_id, k.channel, c.change_id,
               ROW_NUMBER() OVER (
                   PARTITION BY k.key_email, k.subscription_id, k.channel
                   ORDER BY c.changed_at DESC, c.change_id DESC NULLS LAST
               ) AS position
        FROM considered_keys k
        JOIN consent_changes c
          ON LOWER(TRIM(c.email)) = k.key_email
         AND c.subscription_id = k.subscription_id
         AND c.channel = k.channel
         AND (c.changed_at >= k.since OR k.since IS NULL)
        WHERE c.changed_at IS NOT NULL
    ) ranked
    WHERE position = 1
)
SELECT s.change_id, s.email, s.subscription_id, s.channel, s.status_state, s.legal_basis,
       s.legal_basis_explanation, s.changed_at,
       l.key_latest_change_id,
       s.failed_runs,
       y.changed_at AS key_synced_changed_at,
       CASE WHEN y.last_unsubscribed_sent_at = y.last_sent_at THEN y.last_sent_at END
           AS key_sent_unsubscribed_at
FROM considered s
LEFT JOIN key_latest l
       ON l.key_email = s.key_email AND l.subscription_id = s.subscription_id
      AND l.channel = s.channel
LEFT JOIN hubspot_consent_sync_key_state y
       ON y.key_email = s.key_email AND y.subscription_id = s.subscription_id
      AND y.channel = s.channel
WHERE s.finished = 0 OR l.key_latest_change_id = s.change_id
ORDER BY s.changed_at, s.change_id;
