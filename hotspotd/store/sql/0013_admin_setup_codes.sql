-- One-time codes for the owner UI's first-run set-up (issue 12): printed by `hotspotd init`,
-- `run` and `demo` while no owner account exists. Only a SHA-256 of each code is kept; a
-- code works once, until `expires_at`.
CREATE TABLE admin_setup_codes (
    id INTEGER PRIMARY KEY,
    code_hash TEXT NOT NULL UNIQUE,
    issued_by TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
