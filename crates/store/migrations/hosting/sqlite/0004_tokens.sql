-- API tokens of `mtasts serve`'s REST API. A token is `mtasts_<id>_<secret>`: the id finds
-- the row, the secret is kept only as its SHA-256 (the secret is 32 random bytes, so a plain
-- hash is as good as a slow one; a database leak does not leak usable tokens). `tenant` is
-- the tenant the token acts for; NULL is an operator token (every tenant).
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    tenant TEXT,
    secret_sha256 TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant);
