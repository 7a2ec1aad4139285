/**
 * Held by whatever moves documents to S3 (the background sync, on one instance at a time, and storage:migrate), and
 * by the removal of a move's leftover copy (FileDeletions): a move never runs beside another move of its row, nor
 * beside the removal of a copy it may be writing again. Without it, a removal that checked "no row on S3 names this
 * key" could land just after a move switched its row onto that key.
 */
export const MOVE_LOCK = 'document-store:s3-sync';
