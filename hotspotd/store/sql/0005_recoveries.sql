-- Issue 5: time moved to a new device after a MAC change, proven by the M-Pesa receipt and
-- the paying phone number. UNIQUE receipt: one receipt moves time once, ever.
CREATE TABLE recoveries (
    id INTEGER PRIMARY KEY,
    receipt TEXT NOT NULL UNIQUE,
    payment_id INTEGER NOT NULL REFERENCES payments (id),
    from_mac TEXT NOT NULL,
    to_mac TEXT NOT NULL,
    seconds INTEGER NOT NULL,
    grant_id INTEGER REFERENCES grants (id),
    created_at REAL NOT NULL
);
