-- synctv schema 3: the bus spill table. Unused on SQLite (one process, an in-process bus); it
-- exists so both dialects keep the same tables (see postgres/0003_bus_spill.sql).
CREATE TABLE bus_spill (
    id TEXT NOT NULL PRIMARY KEY,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX bus_spill_created ON bus_spill (created_at);
