-- Every column here is nullable or has a constant default, which Postgres 11+ records in the catalog instead of
-- writing into each row: the table is locked for milliseconds, whatever its size, and nothing is rewritten.
ALTER TABLE customer_documents
  ADD COLUMN IF NOT EXISTS stored_file_name TEXT,
  ADD COLUMN IF NOT EXISTS storage VARCHAR(16) NOT NULL DEFAULT 'local',
  ADD COLUMN IF NOT EXISTS sha256 VARCHAR(64),
  ADD COLUMN IF NOT EXISTS size_bytes BIGINT,
  ADD COLUMN IF NOT EXISTS category TEXT,
  ADD COLUMN IF NOT EXISTS description TEXT;

-- NOT VALID: enforced for every new or changed row at once; existing rows (all 'local' by the default) are
-- validated in 004, under a lock that does not block writes.
ALTER TABLE customer_documents
  ADD CONSTRAINT customer_documents_storage_check CHECK (storage IN ('local', 's3')) NOT VALID;

-- The old server wrote each file to its uploads directory under the file's base name, whatever form file_path
-- took ('uploads/x', '/app/backend/uploads/x' or 'x'). NULL when there is no base name at all.
CREATE OR REPLACE FUNCTION crm_file_basename(file_path TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT NULLIF(regexp_replace(file_path, '^.*/', ''), '') $$;

-- An older version of the CRM may still insert rows with its own columns alone; they get their stored name here.
CREATE OR REPLACE FUNCTION crm_documents_fill_stored_file_name() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.stored_file_name IS NULL THEN
    NEW.stored_file_name := crm_file_basename(NEW.file_path);
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER customer_documents_fill_stored_file_name
  BEFORE INSERT ON customer_documents
  FOR EACH ROW EXECUTE FUNCTION crm_documents_fill_stored_file_name();

-- Backfills stored_file_name one range of ids at a time and commits after each, so no statement holds row locks
-- on more than batch_size rows. Walking the primary key keeps every batch an index range scan; rows already
-- filled are skipped, so a run that was interrupted is finished by the next one.
CREATE OR REPLACE PROCEDURE crm_backfill_stored_file_name(batch_size INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
  next_id INTEGER;
  last_id INTEGER;
BEGIN
  SELECT min(id), max(id) INTO next_id, last_id FROM customer_documents WHERE stored_file_name IS NULL;
  WHILE next_id <= last_id LOOP
    UPDATE customer_documents
       SET stored_file_name = crm_file_basename(file_path)
     WHERE id >= next_id AND id < next_id + batch_size AND stored_file_name IS NULL;
    next_id := next_id + batch_size;
    COMMIT;
  END LOOP;
END $$;
