-- Signing keys shared by every instance on this database. The private key is stored only
-- sealed (AES-256-GCM under the KEY_ENCRYPTION_KEY setting, the kid and algorithm bound as
-- associated data); the public half is a JWK (NULL for an HS256 secret, which has none).
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- published from created_at; may sign from here on (a rotation sets it a JWKS max-age ahead)
    activates_at TIMESTAMP NOT NULL,
    -- when the next key replaced it: it verifies for the token retention after this
    retired_at TIMESTAMP,
    -- refused at once by every instance, gone from the JWK set
    revoked_at TIMESTAMP,
    public_jwk TEXT,
    sealed_private_key BLOB NOT NULL
);
CREATE INDEX signing_keys_activates_at_idx ON signing_keys (activates_at);
