-- The feed is also the outbox of the change stream (NATS JetStream): a user's change and a
-- change of the signing keys are rows too, written in the transaction of the change, so that
-- every change reaches the stream in one cursor order. GET /auth/revocations never serves
-- these two kinds; they are kept a day (session_expires_at), for readers catching up.
-- SQLite cannot change a CHECK constraint: the table is rebuilt.
CREATE TABLE revocations_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('session', 'issued_before', 'key', 'user_changed', 'keys_changed')),
    session_id TEXT,
    user_id TEXT,
    cut_off TIMESTAMP,
    session_expires_at TIMESTAMP,
    key_id TEXT
);
INSERT INTO revocations_new (id, recorded_at, kind, session_id, user_id, cut_off, session_expires_at, key_id)
    SELECT id, recorded_at, kind, session_id, user_id, cut_off, session_expires_at, key_id
    FROM revocations;
-- Ids are never reused, even past a pruned last row: the new table goes on from the old
-- table's counter.
DELETE FROM sqlite_sequence WHERE name = 'revocations_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'revocations_new', seq FROM sqlite_sequence WHERE name = 'revocations';
DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;
CREATE INDEX revocations_recorded_at_idx ON revocations (recorded_at);
CREATE INDEX revocations_session_expires_at_idx ON revocations (session_expires_at);
-- How far the relay has published the feed to the stream: the newest position acknowledged.
CREATE TABLE feed_relay (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    published BIGINT NOT NULL
);
