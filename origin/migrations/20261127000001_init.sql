-- Portable across SQLite and PostgreSQL: TEXT ids (UUIDs), BIGINT unix seconds, no booleans.

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    -- lowercase NFC form of `email`; uniqueness is case-insensitive through it
    email_normalized TEXT NOT NULL UNIQUE,
    name             TEXT,
    password_hash    TEXT NOT NULL,
    token_version    BIGINT NOT NULL DEFAULT 1,
    role             TEXT NOT NULL DEFAULT 'user',
    created_at       BIGINT NOT NULL
);

-- One row per device session (`token_id`), stable across refresh rotations.
CREATE TABLE device_sessions (
    token_id       TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 (hex) of the current refresh secret; the secret itself is never stored
    current_hash   TEXT NOT NULL,
    -- hash of the immediate predecessor, honoured for the grace window after `rotated_at`
    previous_hash  TEXT,
    rotated_at     BIGINT,
    -- jti of the newest access token minted for this session
    current_jti    TEXT NOT NULL,
    device_name    TEXT,
    ip             TEXT,
    user_agent     TEXT,
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX device_sessions_user ON device_sessions (user_id, revoked_at);
CREATE INDEX device_sessions_expiry ON device_sessions (expires_at);

-- Every refresh secret ever issued, by hash: what lets a replayed old secret be told apart from
-- garbage, so reuse detection revokes only on a genuinely stolen token and nobody can revoke a
-- session just by knowing its token_id.
CREATE TABLE refresh_secrets (
    hash      TEXT PRIMARY KEY,
    token_id  TEXT NOT NULL REFERENCES device_sessions (token_id) ON DELETE CASCADE,
    issued_at BIGINT NOT NULL
);
CREATE INDEX refresh_secrets_token ON refresh_secrets (token_id);
