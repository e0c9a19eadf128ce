DELETE FROM revocations WHERE kind = 'key';
CREATE TABLE revocations_old (
    id INTEGER PRIMARY KEY NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'issued_before')),
    session_id TEXT,
    user_id TEXT,
    cut_off TIMESTAMP,
    session_expires_at TIMESTAMP
);
INSERT INTO revocations_old (id, recorded_at, kind, session_id, user_id, cut_off, session_expires_at)
    SELECT id, recorded_at, kind, session_id, user_id, cut_off, session_expires_at FROM revocations;
DROP TABLE revocations;
ALTER TABLE revocations_old RENAME TO revocations;
CREATE INDEX revocations_recorded_at_idx ON revocations (recorded_at);
CREATE INDEX revocations_session_expires_at_idx ON revocations (session_expires_at);
