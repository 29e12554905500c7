-- Recording a run again (a retried load, a cleared and re-run run) replaces only its unfinished
-- rows. A final row is the record of what happened (a consent sent, a change rejected) and is
-- never rewritten, even when the re-run would now decide differently.
DELETE FROM hubspot_consent_sync_results
WHERE dag_run_id = :dag_run_id
  AND outcome NOT IN ('SYNCED', 'REJECTED', 'INVALID', 'SKIPPED_SUPERSEDED', 'SKIPPED_HUBSPOT_NEWER');
