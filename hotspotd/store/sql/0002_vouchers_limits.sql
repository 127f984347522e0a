-- Vouchers: printed codes sold for cash; a code grants its plan once.
CREATE TABLE vouchers (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    plan_id INTEGER NOT NULL REFERENCES plans (id),
    batch TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'unused' CHECK (status IN ('unused', 'used', 'void')),
    created_at REAL NOT NULL,
    valid_until REAL,
    used_at REAL,
    used_by_mac TEXT,
    grant_id INTEGER UNIQUE REFERENCES grants (id)
);
CREATE INDEX vouchers_batch ON vouchers (batch);

-- One grant per voucher, enforced by the database like one grant per receipt.
ALTER TABLE grants ADD COLUMN voucher_id INTEGER REFERENCES vouchers (id);
CREATE UNIQUE INDEX grants_voucher ON grants (voucher_id) WHERE voucher_id IS NOT NULL;

-- Fixed-window counters for anything the WiFi can trigger; they survive restarts.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    count INTEGER NOT NULL
);
