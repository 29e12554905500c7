-- Which of the named tables exist in the current schema.
SELECT table_name
FROM information_schema.tables
WHERE table_schema = CURRENT_SCHEMA()
  AND table_name IN (SELECT UNNEST(CAST(:names AS TEXT[])));
