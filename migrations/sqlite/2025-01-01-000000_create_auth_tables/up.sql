-- Users, sessions, refresh tokens (by jti only: no token string is ever stored), the
-- revocation feed that keeps every instance's in-memory set fresh, and the audit trail.
-- Times are UTC, written by the application (TEXT 'YYYY-MM-DD HH:MM:SS.ffffff' on SQLite).

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    -- the email lower-cased by the application: uniqueness without regard to case
    email_key TEXT NOT NULL UNIQUE,
    -- argon2id PHC string
    password_hash TEXT NOT NULL,
    -- JSON array of role names
    roles TEXT NOT NULL DEFAULT '[]',
    disabled BOOLEAN NOT NULL DEFAULT 0,
    -- tokens issued to this user before this time are void (logout-all)
    tokens_valid_after TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoke_reason TEXT,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE refresh_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    parent_jti TEXT,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ip TEXT,
    user_agent TEXT,
    -- set once, when the token is retired by a rotation
    rotated_at TIMESTAMP,
    replaced_by TEXT,
    rotated_ip TEXT,
    rotated_user_agent TEXT
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

CREATE TABLE revocations (
    id INTEGER PRIMARY KEY NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'issued_before')),
    session_id TEXT,
    user_id TEXT,
    cut_off TIMESTAMP,
    session_expires_at TIMESTAMP
);
CREATE INDEX revocations_recorded_at_idx ON revocations (recorded_at);
CREATE INDEX revocations_session_expires_at_idx ON revocations (session_expires_at);

-- Append-only. No foreign keys: the trail outlives the rows it mentions.
CREATE TABLE security_events (
    id INTEGER PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT,
    session_id TEXT,
    ip TEXT,
    user_agent TEXT,
    detail TEXT
);
CREATE INDEX security_events_at_idx ON security_events (at, id);
CREATE INDEX security_events_user_idx ON security_events (user_id, at, id);
CREATE INDEX security_events_kind_idx ON security_events (kind, at, id);
