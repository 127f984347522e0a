-- The owner UI (issue 6): accounts, their audit log, blocked devices, payment flags,
-- and the indexes the dashboard and the payment search need over a year of history.
CREATE TABLE admin_accounts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'cashier')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_login_at REAL,
    -- Logout and password changes end every session issued before this instant.
    sessions_valid_after REAL NOT NULL DEFAULT 0
);

-- Every owner action: who, what, when, before and after (JSON).
CREATE TABLE admin_audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    before TEXT,
    after TEXT,
    source_ip TEXT
);
CREATE INDEX admin_audit_at ON admin_audit (at);

-- Devices the owner refused: RADIUS answers Access-Reject for these MACs.
CREATE TABLE blocked_macs (
    mac TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    blocked_by TEXT NOT NULL,
    blocked_at REAL NOT NULL
);

-- Owner's marks on a payment (e.g. "refund needed"), apart from the payment's own row.
CREATE TABLE payment_flags (
    payment_id INTEGER PRIMARY KEY REFERENCES payments (id),
    refund_needed INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    updated_by TEXT NOT NULL,
    updated_at REAL NOT NULL
);

-- Covering index: the dashboard's sums over a day/week/month never touch the table rows.
CREATE INDEX payments_created ON payments (created_at, status, amount, paid_amount, push_state);
CREATE INDEX payments_phone ON payments (phone, created_at);
CREATE INDEX grants_created ON grants (created_at);
