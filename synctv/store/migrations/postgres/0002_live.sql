-- synctv schema 2: live streams. One stream key per live media item (rotated by replacing the
-- row, revoked by deleting it), and which node holds each item's publisher. Times are BIGINT ms.
CREATE TABLE stream_keys (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    media_id TEXT NOT NULL REFERENCES media_items(id) ON DELETE CASCADE,
    stream_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, media_id)
);

CREATE TABLE live_publishers (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    media_id TEXT NOT NULL REFERENCES media_items(id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    node_url TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, media_id)
);
CREATE INDEX live_publishers_node ON live_publishers (node_id);
