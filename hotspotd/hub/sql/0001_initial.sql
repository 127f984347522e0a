-- The hub's schema: venues (one appliance each), enrolment, the event stream, projections.
-- Times are epoch seconds (double precision), as on the appliances.

-- One row per enrolled appliance (a venue). The key is random; only its SHA-256 is kept.
CREATE TABLE appliances (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    network TEXT,
    key_hash TEXT UNIQUE,
    created_at DOUBLE PRECISION NOT NULL,
    enrolled_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION,
    revoked_reason TEXT,
    last_heard DOUBLE PRECISION,
    -- High-water mark: every seq up to this one is stored in events, exactly once.
    shipped_seq BIGINT NOT NULL DEFAULT 0
);

-- One-time enrolment tokens (hashed), single use, with an expiry.
CREATE TABLE enrolment_tokens (
    token_hash TEXT PRIMARY KEY,
    appliance_id BIGINT NOT NULL REFERENCES appliances (id),
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    used_at DOUBLE PRECISION
);

-- Every journal row of every appliance, exactly once.
CREATE TABLE events (
    appliance_id BIGINT NOT NULL REFERENCES appliances (id),
    seq BIGINT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    entity_id TEXT,
    body JSONB NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (appliance_id, seq)
);

-- Projections: the latest state of each appliance's rows, keyed by (appliance, local id).
CREATE TABLE payments (
    appliance_id BIGINT NOT NULL REFERENCES appliances (id),
    local_id BIGINT NOT NULL,
    public_id TEXT,
    plan_id BIGINT,
    mac TEXT,
    phone_masked TEXT,
    amount BIGINT,
    status TEXT NOT NULL,
    result_code TEXT,
    receipt TEXT,
    paid_amount BIGINT,
    channel TEXT,
    created_at DOUBLE PRECISION,
    settled_at DOUBLE PRECISION,
    PRIMARY KEY (appliance_id, local_id)
);
CREATE INDEX payments_settled ON payments (status, settled_at);
CREATE INDEX payments_receipt ON payments (receipt) WHERE receipt IS NOT NULL;

CREATE TABLE grants (
    appliance_id BIGINT NOT NULL REFERENCES appliances (id),
    local_id BIGINT NOT NULL,
    mac TEXT NOT NULL,
    plan_id BIGINT,
    payment_id BIGINT,
    voucher_id BIGINT,
    receipt TEXT,
    source TEXT NOT NULL,
    seconds BIGINT NOT NULL,
    starts_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (appliance_id, local_id)
);

CREATE TABLE vouchers (
    appliance_id BIGINT NOT NULL REFERENCES appliances (id),
    local_id BIGINT NOT NULL,
    code TEXT NOT NULL,
    plan_id BIGINT,
    batch TEXT,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION,
    valid_until DOUBLE PRECISION,
    used_at DOUBLE PRECISION,
    used_by_mac TEXT,
    PRIMARY KEY (appliance_id, local_id)
);
CREATE INDEX vouchers_code ON vouchers (code);

CREATE TABLE devices (
    appliance_id BIGINT NOT NULL REFERENCES appliances (id),
    mac TEXT NOT NULL,
    first_seen DOUBLE PRECISION,
    PRIMARY KEY (appliance_id, mac)
);

CREATE TABLE unmatched_payments (
    appliance_id BIGINT NOT NULL REFERENCES appliances (id),
    local_id BIGINT NOT NULL,
    source TEXT,
    receipt TEXT,
    amount BIGINT,
    phone_masked TEXT,
    reason TEXT,
    received_at DOUBLE PRECISION,
    resolved_at DOUBLE PRECISION,
    PRIMARY KEY (appliance_id, local_id)
);

-- The latest health snapshot per appliance (the history stays in events).
CREATE TABLE health (
    appliance_id BIGINT PRIMARY KEY REFERENCES appliances (id),
    seq BIGINT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    devices_online BIGINT,
    sessions_online BIGINT,
    payments_waiting BIGINT,
    unmatched_open BIGINT,
    outbox_depth BIGINT,
    journal_depth BIGINT,
    version TEXT,
    body JSONB NOT NULL
);

-- Owner accounts of the hub's web UI (argon2id hashes; no default account).
CREATE TABLE owners (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_login_at DOUBLE PRECISION
);

-- Hub-wide secrets made at first start (the session-cookie key), so restarts keep logins.
CREATE TABLE hub_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
