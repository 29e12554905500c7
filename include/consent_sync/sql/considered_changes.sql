-- Extract's first step (candidates.sql is the second): the changes a run considers, into
-- hubspot_consent_sync_considered, which candidates.sql reads: the changes of the lookback
-- window and the undated ones that have no final outcome in the ledger yet, and with resync the
-- interval's finished changes again, each with its key's email, the emails filter applied.
-- Each temporary table gets its statistics (ANALYZE), so that the statements after it are
-- planned for the night's rows: the estimate of an anti-join against the ledger is anything from
-- one row to the window's size, and either sends the lookups that follow into nested or
-- whole-table loops. (When candidates.sql built these rows in a CTE, PostgreSQL, which keeps no
-- statistics for one, took a night's million change ids for 200 and probed the ledger once per
-- id: 3 s.)
--
-- First the ids only. Most of the window is done, and ruling that out is the one part of a
-- night that grows with the window rather than the night: with two columns it is a merge of two
-- index-only ranges on PostgreSQL (the source's (changed_at, change_id) index and the ledger's
-- partial index of final rows); selecting every column instead made it a scan of the whole
-- source. This only rules out changes that have a final row with the changed_at the ledger
-- recorded; the DELETE below is the exact test.
CREATE TEMPORARY TABLE hubspot_consent_sync_unseen_ids AS
SELECT c.changed_at, c.change_id
FROM consent_changes c
WHERE c.changed_at >= :lookback_start AND c.changed_at < :interval_end
  AND NOT EXISTS (
      SELECT 1
      FROM hubspot_consent_sync_results f
      WHERE f.outcome IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER')
        AND f.changed_at = c.changed_at AND f.change_id = c.change_id
        AND f.changed_at >= :lookback_start AND f.changed_at < :interval_end
  )
-- Undated rows are taken every time, so validation can quarantine them (the DELETE drops the
-- finished ones). UNION: an id is listed once, however many source rows share it.
UNION
SELECT c.changed_at, c.change_id
FROM consent_changes c
WHERE c.changed_at IS NULL;

-- The exact test, by change_id alone (a change the user re-dated since it finished), on the few
-- ids left: the ledger's change_id index on PostgreSQL.
DELETE FROM hubspot_consent_sync_unseen_ids
WHERE EXISTS (
    SELECT 1
    FROM hubspot_consent_sync_results f
    WHERE f.outcome IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER')
      AND f.change_id = hubspot_consent_sync_unseen_ids.change_id
);

ANALYZE hubspot_consent_sync_unseen_ids;

-- Then the rows of those ids, every source row with the id (duplicates reach validation, as
-- before), by the source's (changed_at, change_id) index. A row without a change_id cannot be
-- finished and is taken, so validation can quarantine it.
CREATE TEMPORARY TABLE hubspot_consent_sync_considered AS
SELECT r.*, LOWER(TRIM(BOTH ' ' FROM r.email)) AS key_email, FALSE AS resynced
FROM (
    SELECT c.change_id, c.email, c.subscription_id, c.channel, c.status_state, c.legal_basis,
           c.legal_basis_explanation, c.changed_at
    FROM hubspot_consent_sync_unseen_ids i
    JOIN consent_changes c ON c.changed_at = i.changed_at AND c.change_id = i.change_id
    WHERE c.changed_at >= :lookback_start AND c.changed_at < :interval_end
    UNION ALL
    SELECT c.change_id, c.email, c.subscription_id, c.channel, c.status_state, c.legal_basis,
           c.legal_basis_explanation, c.changed_at
    FROM hubspot_consent_sync_unseen_ids i
    JOIN consent_changes c ON c.changed_at = i.changed_at
    WHERE i.change_id IS NULL AND c.change_id IS NULL
      AND c.changed_at >= :lookback_start AND c.changed_at < :interval_end
    UNION ALL
    SELECT c.change_id, c.email, c.subscription_id, c.channel, c.status_state, c.legal_basis,
           c.legal_basis_explanation, c.changed_at
    FROM consent_changes c
    WHERE c.changed_at IS NULL
      AND (c.change_id IS NULL
           OR c.change_id IN (SELECT i.change_id FROM hubspot_consent_sync_unseen_ids i
                              WHERE i.changed_at IS NULL))
) r
WHERE :all_contacts OR LOWER(TRIM(BOTH ' ' FROM r.email)) = ANY(CAST(:emails AS TEXT[]));

-- Resync: the interval's finished changes again, once per run (whether each is its key's latest
-- is candidates.sql's test, with the other candidates' keys). They have a final row, so none is
-- in the table yet.
INSERT INTO hubspot_consent_sync_considered
WITH finished AS NOT MATERIALIZED (
    SELECT f.change_id, f.dag_run_id
    FROM hubspot_consent_sync_results f
    WHERE f.outcome IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER')
)
SELECT w.change_id, w.email, w.subscription_id, w.channel, w.status_state, w.legal_basis,
       w.legal_basis_explanation, w.changed_at, LOWER(TRIM(BOTH ' ' FROM w.email)), TRUE
FROM consent_changes w
WHERE :resync AND w.changed_at >= :interval_start AND w.changed_at < :interval_end
  AND (:all_contacts OR LOWER(TRIM(BOTH ' ' FROM w.email)) = ANY(CAST(:emails AS TEXT[])))
  AND EXISTS (SELECT 1 FROM finished f WHERE f.change_id = w.change_id)
  AND NOT EXISTS (
      SELECT 1 FROM finished f WHERE f.change_id = w.change_id AND f.dag_run_id = :dag_run_id
  );

ANALYZE hubspot_consent_sync_considered;
