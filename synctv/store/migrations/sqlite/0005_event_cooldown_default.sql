-- synctv schema 5: an event's cooldown is on unless the event turns it off (docs/displays.md):
-- new events default to 5 seconds, as SyncPlayer. Existing events keep the cooldown they have.
-- SQLite cannot change a column's default in place: the table is rebuilt (foreign keys are off
-- while migrations run, and checked before they commit).
CREATE TABLE display_events_new (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    media_id TEXT REFERENCES media_items(id) ON DELETE SET NULL,
    udp_port INTEGER,
    udp_payload TEXT,
    allowed_sources TEXT NOT NULL DEFAULT '[]',
    cooldown_s DOUBLE PRECISION NOT NULL DEFAULT 5,
    lead_ms INTEGER NOT NULL DEFAULT 5000,
    last_triggered_at INTEGER,
    created_at INTEGER NOT NULL
);
INSERT INTO display_events_new (id, name, room_id, media_id, udp_port, udp_payload, allowed_sources,
                                cooldown_s, lead_ms, last_triggered_at, created_at)
    SELECT id, name, room_id, media_id, udp_port, udp_payload, allowed_sources, cooldown_s, lead_ms,
           last_triggered_at, created_at
    FROM display_events;
DROP TABLE display_events;
ALTER TABLE display_events_new RENAME TO display_events;
CREATE INDEX display_events_room ON display_events (room_id);
CREATE INDEX display_events_media ON display_events (media_id);
