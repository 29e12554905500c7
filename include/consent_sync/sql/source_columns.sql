-- The source table's columns and their types, for the schema contract gate.
SELECT column_name, data_type
FROM information_schema.columns
WHERE table_name = :table_name AND table_schema = CURRENT_SCHEMA()
ORDER BY ordinal_position;
