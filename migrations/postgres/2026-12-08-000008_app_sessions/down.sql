DROP TABLE consents;
ALTER TABLE authorization_codes DROP COLUMN sign_in_session;
DROP INDEX sessions_client_id;
DROP INDEX sessions_sign_in_session;
ALTER TABLE sessions DROP COLUMN sign_in;
ALTER TABLE sessions DROP COLUMN sign_in_session;
ALTER TABLE sessions DROP COLUMN audience;
ALTER TABLE sessions DROP COLUMN scope;
ALTER TABLE sessions DROP COLUMN client_id;
