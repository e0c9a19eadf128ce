-- The revocation feed other services follow by cursor (the id): ids must never be reused,
-- so the table is rebuilt with AUTOINCREMENT (a plain INTEGER PRIMARY KEY may hand out the id
-- of a deleted last row again), and it records revoked signing keys (kind 'key', key_id; their
-- tokens have all expired at session_expires_at).
CREATE TABLE revocations_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'issued_before', 'key')),
    session_id TEXT,
    user_id TEXT,
    cut_off TIMESTAMP,
    session_expires_at TIMESTAMP,
    key_id TEXT
);
INSERT INTO revocations_new (id, recorded_at, kind, session_id, user_id, cut_off, session_expires_at)
    SELECT id, recorded_at, kind, session_id, user_id, cut_off, session_expires_at FROM revocations;
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_recorded_at_idx ON revocations (recorded_at);
CREATE INDEX revocations_session_expires_at_idx ON revocations (session_expires_at);
