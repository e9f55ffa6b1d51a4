-- synctv schema 4: LAN synchronized displays (docs/displays.md). A display group is a room of
-- kind 'display'; its screens, the events that start a show on them, and uploaded videos.
-- Times and sizes are BIGINT; the tables and columns are those of sqlite/0004_displays.sql.
CREATE TABLE displays (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    public_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE INDEX displays_room ON displays (room_id);

-- media_id becomes NULL when the media item is removed; such an event cannot fire until it is
-- given another. allowed_sources is a JSON list of CIDR strings (empty: any source).
CREATE TABLE display_events (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    media_id TEXT REFERENCES media_items(id) ON DELETE SET NULL,
    udp_port INTEGER,
    udp_payload TEXT,
    allowed_sources TEXT NOT NULL DEFAULT '[]',
    cooldown_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    lead_ms INTEGER NOT NULL DEFAULT 5000,
    last_triggered_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX display_events_room ON display_events (room_id);
CREATE INDEX display_events_media ON display_events (media_id);

-- files under <data>/videos/<file_name>
CREATE TABLE videos (
    id TEXT NOT NULL PRIMARY KEY,
    title TEXT NOT NULL,
    file_name TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    format TEXT NOT NULL,
    duration DOUBLE PRECISION,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);
