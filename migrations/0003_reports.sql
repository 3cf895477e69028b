-- Stored reports keep the format they were asked in and its size; the
-- data (JSON) renders in any format later without recomputing.
ALTER TABLE reports ADD COLUMN format TEXT NOT NULL DEFAULT 'json';
ALTER TABLE reports ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;
