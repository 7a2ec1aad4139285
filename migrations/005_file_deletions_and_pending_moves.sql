-- migrate:no-transaction
-- Every statement is idempotent, so a run cut short is finished by the next. No statement holds a lock that blocks
-- the CRM's writes for longer than a catalog update: the new column is metadata-only and the index is concurrent.

-- Stored files whose rows are gone, to be removed. A delete inserts here in the transaction that deletes the row, so
-- a committed delete can never strand its file; the file is removed after commit, and a failure is retried by the
-- background job at next_attempt_at, backing off, until it succeeds.
CREATE TABLE IF NOT EXISTS document_file_deletions (
  id BIGSERIAL PRIMARY KEY,
  storage VARCHAR(16) NOT NULL CHECK (storage IN ('local', 's3')),
  storage_key TEXT NOT NULL,
  stored_file_name TEXT,
  document_id BIGINT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  last_error TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS document_file_deletions_due_idx ON document_file_deletions (next_attempt_at);

-- Where a document waits to move: 's3' for an upload kept on local disk because S3 failed when it arrived. The
-- background job copies it, switches storage and clears this in one transaction.
ALTER TABLE customer_documents ADD COLUMN IF NOT EXISTS pending_storage VARCHAR(16);

DROP INDEX CONCURRENTLY IF EXISTS customer_documents_pending_storage_idx;
CREATE INDEX CONCURRENTLY customer_documents_pending_storage_idx
  ON customer_documents (id) WHERE pending_storage IS NOT NULL;
