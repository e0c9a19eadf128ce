-- Sessions of the authorization code grant remember what their client was granted (the
-- client, the scopes, the access tokens' audience when not the default) and the browser
-- sign-in session that started them, so that ending that sign-in session (OpenID Connect
-- RP-initiated logout) ends them too. A browser sign-in session is itself a session, marked
-- `sign_in`, with no refresh token: ending a user's sessions ends it as any other.
ALTER TABLE sessions ADD COLUMN client_id TEXT;
ALTER TABLE sessions ADD COLUMN scope TEXT;
ALTER TABLE sessions ADD COLUMN audience TEXT;
ALTER TABLE sessions ADD COLUMN sign_in_session TEXT;
ALTER TABLE sessions ADD COLUMN sign_in BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX sessions_sign_in_session ON sessions (sign_in_session);
CREATE INDEX sessions_client_id ON sessions (client_id);
ALTER TABLE authorization_codes ADD COLUMN sign_in_session TEXT;
-- What each user allowed each client that is not first-party (the consent page): the scopes,
-- space-separated. Asking for more scopes asks again.
CREATE TABLE consents (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
