-- synctv schema 3: the bus spill table (synctv/bus_postgres.py).
-- A bus message too large for one NOTIFY payload (~8000 bytes) is stored here and the NOTIFY
-- carries only the row id; rows older than a minute are deleted by every node periodically.
CREATE TABLE bus_spill (
    id TEXT NOT NULL PRIMARY KEY,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX bus_spill_created ON bus_spill (created_at);
