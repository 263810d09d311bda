-- The resolver's policy cache: one row per recipient domain, the state as JSON text, and when
-- nothing in it is worth keeping any more (unix seconds).
CREATE TABLE policy_cache (
    domain     TEXT PRIMARY KEY NOT NULL,
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX policy_cache_expires ON policy_cache (expires_at);
