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

-- An older version of the CRM may still write rows with its own columns alone: an insert gets its stored name
-- here, and so does an update that moves file_path without naming a stored file (this service always names one).
CREATE OR REPLACE FUNCTION crm_documents_fill_stored_file_name() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.stored_file_name IS NULL THEN
      NEW.stored_file_name := crm_file_basename(NEW.file_path);
    END IF;
  ELSIF NEW.file_path IS DISTINCT FROM OLD.file_path
        AND NEW.stored_file_name IS NOT DISTINCT FROM OLD.stored_file_name
        AND NEW.storage = 'local' THEN
    NEW.stored_file_name := crm_file_basename(NEW.file_path);
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER customer_documents_fill_stored_file_name
  BEFORE INSERT OR UPDATE OF file_path ON customer_documents
  FOR EACH ROW EXECUTE FUNCTION crm_documents_fill_stored_file_name();

-- Backfills stored_file_name batch_size rows at a time, committing after each batch, so no statement holds row
-- locks on more rows than that. Each batch is the next batch_size ids after the last one (a range scan of the
-- primary key, however sparse the ids are); rows already filled are skipped, so a run that was interrupted is
-- finished by the next one. BIGINT, so ids near the INTEGER limit cannot overflow the arithmetic.
CREATE OR REPLACE PROCEDURE crm_backfill_stored_file_name(batch_size INTEGER)
LANGUAGE plpgsql AS $$
DECLARE
  last_id BIGINT := 0;
  batch_end BIGINT;
BEGIN
  LOOP
    SELECT max(id) INTO batch_end
      FROM (SELECT id FROM customer_documents WHERE id > last_id ORDER BY id LIMIT batch_size) AS batch;
    EXIT WHEN batch_end IS NULL;
    UPDATE customer_documents
       SET stored_file_name = crm_file_basename(file_path)
     WHERE id > last_id AND id <= batch_end AND stored_file_name IS NULL;
    last_id := batch_end;
    COMMIT;
  END LOOP;
END $$;
