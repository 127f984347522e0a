-- Paid time that moves to a sister venue (issue 16, docs/HUB.md "Roaming"): the M-Pesa
-- receipt plus the paying phone, typed at another venue of the network, moves the time
-- left on that payment there, once network-wide (the hub arbitrates).

-- The newest hub time claim against this appliance's payments already applied here.
ALTER TABLE hub_state ADD COLUMN time_claims_seen INTEGER NOT NULL DEFAULT 0;

-- Time that came here from another venue: one grant per hub claim.
CREATE TABLE roamed_time (
    claim_id INTEGER PRIMARY KEY,
    receipt TEXT NOT NULL,
    home TEXT NOT NULL,
    mac TEXT NOT NULL,
    seconds INTEGER NOT NULL,
    grant_id INTEGER NOT NULL UNIQUE REFERENCES grants (id),
    moved_at REAL NOT NULL
);

-- Time of this venue's payments that moved away: taken off the paying device here, once.
CREATE TABLE time_moved_away (
    claim_id INTEGER PRIMARY KEY,
    payment_id INTEGER NOT NULL REFERENCES payments (id),
    from_mac TEXT NOT NULL,
    venue TEXT NOT NULL,
    seconds INTEGER NOT NULL,
    applied_at REAL NOT NULL
);
