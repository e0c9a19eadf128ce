-- What a stored key signs: `access` (access, refresh and sign-in tokens: the deployment's
-- signing keys) or `id_token` (OpenID Connect ID tokens, an RS256 key kept beside an HS256
-- secret, which no client may hold). Each purpose has its own lineage of keys.
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'access';
