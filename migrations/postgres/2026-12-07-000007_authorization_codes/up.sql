-- Authorization codes (the code grant): only a SHA-256 digest of each code is kept (a code is
-- 256 random bits and lives 60 seconds). A code is used once: `used_at` is set by its first
-- exchange, `session_id` then names the session that exchange started, and `replayed_at`
-- records a second exchange, which revokes that session.
CREATE TABLE authorization_codes (
    code_digest BYTEA PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    resource TEXT,
    auth_time TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    session_id TEXT,
    replayed_at TIMESTAMP
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);
