-- Instances follow user changes (roles, disabled) by updated_at, to drop cached copies.
CREATE INDEX users_updated_at_idx ON users (updated_at);
