-- synctv schema 5: an event's cooldown is on unless the event turns it off (docs/displays.md):
-- new events default to 5 seconds, as SyncPlayer. Existing events keep the cooldown they have.
ALTER TABLE display_events ALTER COLUMN cooldown_s SET DEFAULT 5;
