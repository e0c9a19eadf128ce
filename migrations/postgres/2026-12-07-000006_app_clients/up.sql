-- Clients that sign users in with the authorization code grant: their redirect URIs and
-- post-logout redirect URIs (JSON arrays of strings, matched exactly), whether they are public
-- (no secret: the digest is empty and never matches) and whether they are first-party (no
-- consent page).
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
