-- Issue 3: which Daraja channel new STK pushes go out on. At most one stored channel is
-- active; none active means the configuration file's `[daraja]` section ("default").
-- Each payment keeps the channel it was pushed on (payments.channel, migration 0003), and
-- its queries use that channel whatever is active later.
ALTER TABLE daraja_channels ADD COLUMN active INTEGER NOT NULL DEFAULT 0
    CHECK (active IN (0, 1));
CREATE UNIQUE INDEX daraja_channels_one_active ON daraja_channels (active) WHERE active = 1;

-- A C2B confirmation from a source that is not allow-listed waits here until Pull
-- Transactions lists its TransID (then it is recorded with Pull's amount and account, as
-- c2b_transactions), or is refused (never listed: stored in callback_rejections too), or,
-- when Daraja could not be asked in time, held for the owner (unmatched_payments).
-- No names or phone numbers are kept.
CREATE TABLE c2b_unverified (
    trans_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    source TEXT,
    amount TEXT NOT NULL,
    bill_ref TEXT,
    trans_time TEXT,
    shortcode TEXT,
    received_at REAL NOT NULL,
    checks INTEGER NOT NULL DEFAULT 0,
    answered INTEGER NOT NULL DEFAULT 0,
    next_check_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'confirmed', 'rejected', 'held')),
    decided_at REAL,
    reason TEXT
);
CREATE INDEX c2b_unverified_due ON c2b_unverified (next_check_at) WHERE state = 'pending';
