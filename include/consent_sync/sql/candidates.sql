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
-- The cost follows the night, not the history: considered_changes.sql has left the changes the
-- run considers in hubspot_consent_sync_considered, and everything here is read by the
-- interval's range or looked up for their change ids and keys (the ledger's change_id index, the
-- source's key expression index, the key state's primary key), never by aggregating a whole
-- table.
WITH failures AS (
    SELECT r.change_id, COUNT(DISTINCT r.dag_run_id) AS failed_runs
    FROM hubspot_consent_sync_results r
    WHERE r.outcome = 'FAILED' AND r.dag_run_id <> :dag_run_id
      AND r.change_id IN (SELECT s.change_id FROM hubspot_consent_sync_considered s)
    GROUP BY r.change_id
),
-- The changes that can supersede a considered one. Every change of the interval, read by its
-- range: on a night of a million changes, finding them by key cost PostgreSQL two sorts of the
-- night for a merge join (1.6 s more, measured). Beyond the interval, by key: the considered
-- keys' later changes (a backfill's; skipped outright when the table has none), for the keys
-- with considered changes older than the interval (late rows, retries) their changes from the
-- oldest one to the interval, and through the whole table for a key with an undated considered
-- change and no older dated one. A change older than a key's oldest considered one cannot be
-- its latest, which bounds those searches (PostgreSQL reads them by the key index, DuckDB skips
-- row groups by their changed_at ranges). Only the few earlier keys are grouped: grouping every
-- considered key cost PostgreSQL 1.3 s on a million-row night that had none (measured).
earlier_keys AS (
    SELECT key_email, subscription_id, channel, MIN(changed_at) AS since
    FROM hubspot_consent_sync_considered
    WHERE (changed_at < :interval_start OR changed_at IS NULL)
      AND email IS NOT NULL AND subscription_id IS NOT NULL AND channel IS NOT NULL
    GROUP BY key_email, subscription_id, channel
),
key_changes AS (
    SELECT LOWER(TRIM(BOTH ' ' FROM c.email)) AS key_email, c.subscription_id, c.channel,
           c.change_id, c.changed_at
    FROM consent_changes c
    WHERE c.changed_at >= :interval_start AND c.changed_at < :interval_end
    UNION ALL
    SELECT k.key_email, k.subscription_id, k.channel, c.change_id, c.changed_at
    FROM (
        SELECT DISTINCT key_email, subscription_id, channel
        FROM hubspot_consent_sync_considered
        WHERE email IS NOT NULL AND subscription_id IS NOT NULL AND channel IS NOT NULL
    ) k
    JOIN consent_changes c
      ON LOWER(TRIM(BOTH ' ' FROM c.email)) = k.key_email AND c.subscription_id = k.subscription_id
     AND c.channel = k.channel
    WHERE c.changed_at >= :interval_end
      AND EXISTS (SELECT 1 FROM consent_changes a WHERE a.changed_at >= :interval_end)
    UNION ALL
    SELECT k.key_email, k.subscription_id, k.channel, c.change_id, c.changed_at
    FROM earlier_keys k
    -- Per key, through the key index: with the window's hundreds of thousands of rows the
    -- PostgreSQL planner would rather hash them all. OFFSET 0 keeps it from flattening this.
    CROSS JOIN LATERAL (
        SELECT c.change_id, c.changed_at
        FROM consent_changes c
        WHERE LOWER(TRIM(BOTH ' ' FROM c.email)) = k.key_email
          AND c.subscription_id = k.subscription_id AND c.channel = k.channel
          AND c.changed_at >= k.since AND c.changed_at >= :lookback_start
          AND c.changed_at < :interval_start
        OFFSET 0
    ) c
    WHERE k.since < :interval_start
    UNION ALL
    SELECT k.key_email, k.subscription_id, k.channel, c.change_id, c.changed_at
    FROM earlier_keys k
    -- Per key too: a join lets PostgreSQL sort the whole source for a merge, even for no keys.
    CROSS JOIN LATERAL (
        SELECT c.change_id, c.changed_at
        FROM consent_changes c
        WHERE LOWER(TRIM(BOTH ' ' FROM c.email)) = k.key_email
          AND c.subscription_id = k.subscription_id AND c.channel = k.channel
          AND c.changed_at IS NOT NULL
        OFFSET 0
    ) c
    WHERE k.since IS NULL
),
-- NULLS LAST is explicit because the engines' default null order for DESC differs
-- (PostgreSQL: first, DuckDB: last). A key's email is LOWER(TRIM(BOTH ' ' FROM email)): a bare
-- TRIM also strips no-break and other Unicode spaces on DuckDB but not on PostgreSQL
-- (email_key.py is the same in Python and Arrow). The partition only groups, so its email is
-- compared byte by byte (COLLATE "C", DuckDB's own order) rather than by the database's
-- collation: the same groups, and 0.5 s less of sorting on a million-row night (PostgreSQL,
-- C.UTF-8; measured).
key_latest AS (
    SELECT key_email, subscription_id, channel, change_id AS key_latest_change_id
    FROM (
        SELECT key_changes.*,
               ROW_NUMBER() OVER (
                   PARTITION BY key_email COLLATE "C", subscription_id, channel
                   ORDER BY changed_at DESC, change_id DESC NULLS LAST
               ) AS position
        FROM key_changes
    ) ranked
    WHERE position = 1
)
SELECT s.change_id, s.email, s.subscription_id, s.channel, s.status_state, s.legal_basis,
       s.legal_basis_explanation, s.changed_at,
       l.key_latest_change_id,
       COALESCE(f.failed_runs, 0) AS failed_runs,
       y.changed_at AS key_synced_changed_at,
       CASE WHEN y.last_unsubscribed_sent_at = y.last_sent_at THEN y.last_sent_at END
           AS key_sent_unsubscribed_at
FROM hubspot_consent_sync_considered s
LEFT JOIN failures f ON f.change_id = s.change_id
LEFT JOIN hubspot_consent_sync_key_state y
       ON y.key_email = s.key_email AND y.subscription_id = s.subscription_id
      AND y.channel = s.channel
LEFT JOIN key_latest l
       ON l.key_email = s.key_email AND l.subscription_id = s.subscription_id
      AND l.channel = s.channel
WHERE NOT s.resynced OR l.key_latest_change_id = s.change_id
ORDER BY s.changed_at, s.change_id;
