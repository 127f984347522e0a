-- Running as an appliance (issue 7): data-subject requests and retention runs (audited,
-- without keeping the phone number itself), owner-alert state (for rate limiting), and
-- cursors of background jobs (e.g. the last payment a customer SMS receipt was sent for).
CREATE TABLE privacy_requests (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('export', 'erase', 'retention')),
    subject TEXT,
    rows_affected INTEGER NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX privacy_requests_at ON privacy_requests (at);

CREATE TABLE alert_state (
    key TEXT PRIMARY KEY,
    active INTEGER NOT NULL DEFAULT 0,
    message TEXT,
    first_seen_at REAL,
    last_sent_at REAL,
    sent_count INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);

CREATE TABLE ops_cursors (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
