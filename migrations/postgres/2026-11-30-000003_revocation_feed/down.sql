DELETE FROM revocations WHERE kind = 'key';
ALTER TABLE revocations DROP COLUMN key_id;
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('session', 'issued_before'));
