-- migrate:no-transaction
-- Built CONCURRENTLY, so the CRM keeps writing while a large table is indexed. A build that was interrupted leaves
-- an invalid index behind, which CREATE INDEX IF NOT EXISTS would then skip; dropping first makes a rerun whole.

-- Listing a customer's documents, newest first (rows from before this service may lack uploaded_at: last).
DROP INDEX CONCURRENTLY IF EXISTS customer_documents_customer_uploaded_idx;
CREATE INDEX CONCURRENTLY customer_documents_customer_uploaded_idx
  ON customer_documents (customer_id, uploaded_at DESC NULLS LAST, id DESC);

-- Finding every row that names a stored file: before a file is removed, and by the consistency tools.
DROP INDEX CONCURRENTLY IF EXISTS customer_documents_stored_file_name_idx;
CREATE INDEX CONCURRENTLY customer_documents_stored_file_name_idx
  ON customer_documents (stored_file_name);

-- Takes SHARE UPDATE EXCLUSIVE: reads and writes go on while existing rows are checked.
ALTER TABLE customer_documents VALIDATE CONSTRAINT customer_documents_storage_check;
