-- migrate:no-transaction
-- Outside a transaction, so the procedure can commit batch by batch (see 002).
CALL crm_backfill_stored_file_name(5000);
