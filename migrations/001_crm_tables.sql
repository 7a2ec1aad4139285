-- The CRM's own tables, exactly as the CRM defines them. On an existing CRM database they are already there and
-- are left untouched; on a fresh machine they are created so the service runs on its own.
CREATE TABLE IF NOT EXISTS customers (
  id SERIAL PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  email VARCHAR(255),
  created_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE IF NOT EXISTS customer_documents (
  id SERIAL PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
  file_name VARCHAR(255) NOT NULL,
  file_path VARCHAR(1024) NOT NULL,
  file_type VARCHAR(255),
  file_size INTEGER,
  uploaded_at TIMESTAMPTZ DEFAULT now()
);
