-- synctv schema 1: users, rooms, members, media items, playback state, settings.
-- Times are integer milliseconds (server time); JSON values are TEXT.
CREATE TABLE settings (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('root', 'admin', 'user')),
    password_hash TEXT NOT NULL,
    token_generation INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE rooms (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('watch', 'display')),
    password_hash TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    creator_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE room_members (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('creator', 'admin', 'member', 'guest')),
    permissions INTEGER NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id);

CREATE TABLE media_items (
    id TEXT NOT NULL PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    sort INTEGER NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_data TEXT NOT NULL DEFAULT '{}',
    headers TEXT NOT NULL DEFAULT '{}',
    subtitles TEXT NOT NULL DEFAULT '[]',
    duration DOUBLE PRECISION,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX media_items_room_sort ON media_items (room_id, sort);

CREATE TABLE playback_states (
    room_id TEXT NOT NULL PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
    media_id TEXT,
    playing INTEGER NOT NULL,
    ended INTEGER NOT NULL,
    position DOUBLE PRECISION NOT NULL,
    rate DOUBLE PRECISION NOT NULL,
    at_ms INTEGER NOT NULL,
    version INTEGER NOT NULL,
    event_id TEXT
);
