DROP TABLE feed_relay;
DELETE FROM revocations WHERE kind IN ('user_changed', 'keys_changed');
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('session', 'issued_before', 'key'));
