-- A run's ledger rows are replaced whole, which makes load_results idempotent.
DELETE FROM hubspot_consent_sync_results WHERE dag_run_id = :dag_run_id;
