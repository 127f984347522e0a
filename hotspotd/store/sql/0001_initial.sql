-- Plans customers can buy. A change to a plan never alters time already granted:
-- grants copy the seconds and the rate limit they were sold with.
CREATE TABLE plans (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    price INTEGER NOT NULL CHECK (price > 0),
    duration_seconds INTEGER NOT NULL CHECK (duration_seconds > 0),
    rate_limit TEXT,
    sort_order INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL
);

-- Every device the portal or the router has told us about, by normalised MAC.
CREATE TABLE devices (
    mac TEXT PRIMARY KEY,
    last_ip TEXT,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);

-- One row per purchase attempt, written BEFORE the STK push is sent (invariant 1).
-- push_state: sending (row stored, HTTP call not known to have finished), sent
-- (Daraja accepted it), uncertain (the call timed out: it may have reached the phone),
-- rejected (Daraja refused it; the payment is failed).
CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    plan_id INTEGER NOT NULL REFERENCES plans (id),
    mac TEXT NOT NULL,
    ip TEXT,
    phone TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'completed', 'failed', 'cancelled', 'expired')),
    push_state TEXT NOT NULL DEFAULT 'sending'
        CHECK (push_state IN ('sending', 'sent', 'uncertain', 'rejected')),
    merchant_request_id TEXT,
    checkout_request_id TEXT UNIQUE,
    result_code TEXT,
    result_desc TEXT,
    receipt TEXT UNIQUE,
    paid_amount INTEGER,
    settled_by TEXT,
    query_count INTEGER NOT NULL DEFAULT 0,
    next_query_at REAL,
    created_at REAL NOT NULL,
    push_sent_at REAL,
    settled_at REAL
);
CREATE INDEX payments_pending ON payments (status, next_query_at);
CREATE INDEX payments_mac ON payments (mac, created_at);

-- Time given to a device. The UNIQUE constraints are the database's own guarantee of
-- invariant 2: one payment, and one M-Pesa receipt, yield at most one grant.
CREATE TABLE grants (
    id INTEGER PRIMARY KEY,
    mac TEXT NOT NULL,
    plan_id INTEGER REFERENCES plans (id),
    payment_id INTEGER UNIQUE REFERENCES payments (id),
    receipt TEXT UNIQUE,
    source TEXT NOT NULL,
    seconds INTEGER NOT NULL CHECK (seconds > 0),
    rate_limit TEXT,
    starts_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX grants_mac ON grants (mac);

-- What each device is entitled to now: the sum of its grants, stacked (invariant 4).
CREATE TABLE entitlements (
    mac TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    rate_limit TEXT,
    plan_id INTEGER REFERENCES plans (id),
    updated_at REAL NOT NULL
);

-- The router outbox: every change the router must make, applied with retries.
CREATE TABLE router_ops (
    id INTEGER PRIMARY KEY,
    mac TEXT NOT NULL,
    ip TEXT,
    action TEXT NOT NULL CHECK (action IN ('login', 'disconnect')),
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    done_at REAL
);
CREATE INDEX router_ops_due ON router_ops (state, next_attempt_at);

-- Callbacks whose money could not be matched to a payment: held for the owner.
CREATE TABLE unmatched_payments (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    reference TEXT,
    receipt TEXT UNIQUE,
    amount INTEGER,
    phone TEXT,
    reason TEXT NOT NULL,
    body TEXT,
    received_at REAL NOT NULL,
    resolved_at REAL
);

-- RADIUS accounting, one row per Acct-Session-Id.
CREATE TABLE radius_sessions (
    session_id TEXT NOT NULL,
    nas_address TEXT NOT NULL,
    mac TEXT,
    user_name TEXT,
    framed_ip TEXT,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    stopped_at REAL,
    session_time INTEGER,
    input_octets INTEGER NOT NULL DEFAULT 0,
    output_octets INTEGER NOT NULL DEFAULT 0,
    input_packets INTEGER NOT NULL DEFAULT 0,
    output_packets INTEGER NOT NULL DEFAULT 0,
    terminate_cause TEXT,
    PRIMARY KEY (nas_address, session_id)
);
CREATE INDEX radius_sessions_mac ON radius_sessions (mac, status);

-- What happened, in order: the story of every payment and device.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    payment_id INTEGER,
    mac TEXT,
    detail TEXT
);
CREATE INDEX events_payment ON events (payment_id);
CREATE INDEX events_mac ON events (mac);
