-- The devices page (origin/src/pages). Portable across SQLite and PostgreSQL like the rest.

-- A device session opened by the page's login form, with the SHA-256 (hex) of its CSRF
-- synchronizer token: a state-changing form is accepted only with the token bound to the very
-- session that sends it. The row goes with its session (cleanup, account deletion).
CREATE TABLE page_sessions (
    token_id   TEXT PRIMARY KEY REFERENCES device_sessions (token_id) ON DELETE CASCADE,
    csrf_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Token statistics sampled at most once a minute, for the admin page's history. The minute
-- (unix seconds / 60) is the key, so however many origin instances sample, each minute has one
-- row and every instance draws the same chart. Redis's counts have no history of their own (its
-- keys leave by TTL), hence the samples; logins and refreshes per minute need none (they are
-- counted from device_sessions and refresh_secrets).
CREATE TABLE stats_samples (
    minute           BIGINT PRIMARY KEY,
    redis_jtis       BIGINT NOT NULL,
    redis_refresh    BIGINT NOT NULL,
    active_sessions  BIGINT NOT NULL,
    revoked_sessions BIGINT NOT NULL
);
