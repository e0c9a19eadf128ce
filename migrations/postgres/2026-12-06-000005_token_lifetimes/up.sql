-- The token lifetimes the servers issue with, so that a command revoking a key or a client
-- knows how long the revocation matters without being told. One row per pair of lifetimes
-- in use: each server records its pair when it starts and again every ten minutes
-- (`seen_at`); a pair whose refresh lifetime has passed since it was last seen is dropped.
CREATE TABLE token_lifetimes (
    access_seconds BIGINT NOT NULL,
    refresh_seconds BIGINT NOT NULL,
    seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (access_seconds, refresh_seconds)
);
