-- PostgreSQL indexes for the pipeline's lookups in its own tables (DuckDB scans instead: its
-- indexes serve point lookups, not joins, and would cost memory and load time).
-- The key expression, as candidates.sql and the README's per-email audit query spell it.
CREATE INDEX IF NOT EXISTS hubspot_consent_sync_results_key
    ON hubspot_consent_sync_results (LOWER(TRIM(email)), subscription_id, channel);
