-- One row per note; `owner` is the user id the edge vouched for (the assertion's `sub`).
CREATE TABLE notes (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX notes_by_owner ON notes (owner, created_at, id);
