-- Placeholder on the providers branch only: schema 5 belongs to the display-doors branch
-- (0005_event_cooldown_default.sql). Delete this file when the two branches are merged.
SELECT 1;
