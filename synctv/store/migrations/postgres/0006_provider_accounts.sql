-- synctv schema 6: provider accounts (docs/providers.md). A user's link to their own Alist, Emby,
-- Jellyfin or Bilibili account. credentials and session are sealed with the provider key
-- (<data>/provider-key, never in the database): AES-GCM blobs, never the clear values.
-- Times are BIGINT; the tables and columns are those of sqlite/0006_provider_accounts.sql.
CREATE TABLE provider_accounts (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('alist', 'emby', 'jellyfin', 'bilibili')),
    server TEXT NOT NULL,
    username TEXT NOT NULL,
    credentials TEXT NOT NULL,
    session TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('ok', 'pending', 'login_failed')),
    share_direct BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX provider_accounts_user ON provider_accounts (user_id);
