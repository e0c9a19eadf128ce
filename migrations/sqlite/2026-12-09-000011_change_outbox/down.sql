DROP TABLE feed_relay;
DELETE FROM revocations WHERE kind IN ('user_changed', 'keys_changed');
CREATE TABLE revocations_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'issued_before', 'key')),
    session_id TEXT,
    user_id TEXT,
    cut_off TIMESTAMP,
    session_expires_at TIMESTAMP,
    key_id TEXT
);
INSERT INTO revocations_old (id, recorded_at, kind, session_id, user_id, cut_off, session_expires_at, key_id)
    SELECT id, recorded_at, kind, session_id, user_id, cut_off, session_expires_at, key_id
    FROM revocations;
-- Ids are never reused, even past a pruned last row: the new table goes on from the old
-- table's counter.
DELETE FROM sqlite_sequence WHERE name = 'revocations_old';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'revocations_old', seq FROM sqlite_sequence WHERE name = 'revocations';
DROP TABLE revocations;
ALTER TABLE revocations_old RENAME TO revocations;
CREATE INDEX revocations_recorded_at_idx ON revocations (recorded_at);
CREATE INDEX revocations_session_expires_at_idx ON revocations (session_expires_at);
