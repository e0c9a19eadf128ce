-- Service clients (OAuth client credentials). Only a SHA-256 digest of the secret is kept:
-- secrets are 256 random bits, so a slow hash adds nothing. Every token of a client carries
-- its session_id as `sid`, so that removing the client revokes that one session.
CREATE TABLE clients (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    secret_digest BLOB NOT NULL,
    roles TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
