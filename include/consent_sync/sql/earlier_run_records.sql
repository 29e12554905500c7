-- The records of the runs before one, newest first (to tell how many nights in a row sent nothing).
SELECT *
FROM hubspot_consent_sync_run_records
WHERE interval_end < :interval_end
ORDER BY interval_end DESC
LIMIT :limit;
