-- synctv schema 7: background workers (docs/workers.md). A media item without a duration is
-- probed by a node that serves its room: the claim (node id and lease end, ms) keeps two nodes
-- from probing it at once; a failure leaves its reason, counts the attempt and sets when the
-- next attempt may run (backoff).
ALTER TABLE media_items ADD COLUMN probe_error TEXT;
ALTER TABLE media_items ADD COLUMN probe_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE media_items ADD COLUMN probe_after BIGINT NOT NULL DEFAULT 0;
ALTER TABLE media_items ADD COLUMN probe_claim TEXT;
ALTER TABLE media_items ADD COLUMN probe_claim_until BIGINT NOT NULL DEFAULT 0;
