-- Settings the owner edits in the web UI (issue 6). They override the configuration file:
-- `key` is "section.name" of a config option; `value` is its JSON, or for a secret the
-- SecretBox ciphertext (purpose "setting/<key>"), never the plain text.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    secret INTEGER NOT NULL DEFAULT 0 CHECK (secret IN (0, 1)),
    updated_at REAL NOT NULL,
    updated_by TEXT NOT NULL
);
