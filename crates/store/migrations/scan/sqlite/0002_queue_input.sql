-- The domain as the user wrote it (an IDN in U-labels, other case, a trailing dot), when it
-- differs from the queued A-label form: results keep what the user wrote.
ALTER TABLE scan_queue ADD COLUMN input TEXT;
