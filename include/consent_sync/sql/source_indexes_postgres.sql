-- The source table's indexes (PostgreSQL), to tell the user which ones extract is missing.
SELECT indexdef
FROM pg_indexes
WHERE schemaname = CURRENT_SCHEMA() AND tablename = :table_name;
