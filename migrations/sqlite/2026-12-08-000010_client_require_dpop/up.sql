-- Whether a client's token requests must carry a DPoP proof (RFC 9449): its tokens are then
-- always bound to a key.
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
