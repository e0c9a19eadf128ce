-- The feed is also the outbox of the change stream (NATS JetStream): a user's change and a
-- change of the signing keys are rows too, written in the transaction of the change, so that
-- every change reaches the stream in one cursor order. GET /auth/revocations never serves
-- these two kinds; they are kept a day (session_expires_at), for readers catching up.
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('session', 'issued_before', 'key', 'user_changed', 'keys_changed'));
-- How far the relay has published the feed to the stream: the newest position acknowledged.
CREATE TABLE feed_relay (
    id SMALLINT PRIMARY KEY NOT NULL CHECK (id = 1),
    published BIGINT NOT NULL
);
