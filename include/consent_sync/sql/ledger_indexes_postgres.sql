-- PostgreSQL indexes for the pipeline's lookups in its own tables (DuckDB scans instead: its
-- indexes serve point lookups, not joins, and would cost memory and load time).
-- The key expression, as candidates.sql and the README's per-email audit query spell it.
CREATE INDEX IF NOT EXISTS hubspot_consent_sync_results_key
    ON hubspot_consent_sync_results (LOWER(TRIM(BOTH ' ' FROM email)), subscription_id, channel);

-- The final rows by changed_at: candidates.sql rules out the window's finished changes with a
-- range on it (the same outcome list, so the planner can use this partial index).
CREATE INDEX IF NOT EXISTS hubspot_consent_sync_results_finished
    ON hubspot_consent_sync_results (changed_at, change_id)
    WHERE outcome IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER');
