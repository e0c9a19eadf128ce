-- The revocation feed other services follow by cursor (the id) also records revoked signing
-- keys (kind 'key', key_id; their tokens have all expired at session_expires_at).
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('session', 'issued_before', 'key'));
ALTER TABLE revocations ADD COLUMN key_id TEXT;
