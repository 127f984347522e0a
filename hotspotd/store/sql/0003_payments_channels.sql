-- Issue 3: payments that are never lost (C2B, Pull, channels, checked callbacks).

-- A short per-device account code customers type as the paybill account number (C2B).
CREATE TABLE account_codes (
    code TEXT PRIMARY KEY,
    mac TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);

-- The AccountReference each STK push carried: a C2B confirmation or a Pull row of the same
-- payment (paybill with registered URLs) carries it back as BillRefNumber.
ALTER TABLE payments ADD COLUMN reference TEXT;
CREATE UNIQUE INDEX payments_reference ON payments (reference) WHERE reference IS NOT NULL;
ALTER TABLE payments ADD COLUMN channel TEXT;

-- Every callback we refused or could not use, with why (spoofing attempts included).
CREATE TABLE callback_rejections (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT,
    source TEXT,
    reference TEXT,
    reason TEXT NOT NULL,
    body TEXT
);
CREATE INDEX callback_rejections_at ON callback_rejections (received_at);

-- Every C2B transaction seen (confirmation, Pull row), once per TransID: what it became.
CREATE TABLE c2b_transactions (
    trans_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    channel TEXT,
    amount INTEGER,
    bill_ref TEXT,
    trans_time TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('granted', 'settled_payment', 'duplicate',
                                             'unmatched')),
    mac TEXT,
    payment_id INTEGER,
    reason TEXT,
    received_at REAL NOT NULL
);

-- Daraja credential sets. Secrets are SecretBox ciphertexts (key in [security] key_file).
CREATE TABLE daraja_channels (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('paybill', 'till')),
    environment TEXT NOT NULL,
    base_url TEXT NOT NULL,
    shortcode TEXT NOT NULL,
    till_number TEXT NOT NULL DEFAULT '',
    consumer_key_enc TEXT NOT NULL,
    consumer_secret_enc TEXT NOT NULL,
    passkey_enc TEXT NOT NULL,
    callback_token_enc TEXT NOT NULL,
    pull_registered_at REAL,
    pull_checked_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

-- An STK callback from a source we do not trust is only a hint: what it claimed is kept
-- here until STK Query confirms (or contradicts) it.
CREATE TABLE stk_callback_hints (
    checkout_request_id TEXT PRIMARY KEY,
    result_code TEXT NOT NULL,
    receipt TEXT,
    amount INTEGER,
    phone TEXT,
    received_at REAL NOT NULL,
    source TEXT
);

-- Pull Transactions bookkeeping per channel.
CREATE TABLE pull_state (
    channel TEXT PRIMARY KEY,
    registered_at REAL,
    checked_at REAL,
    last_error TEXT
);
