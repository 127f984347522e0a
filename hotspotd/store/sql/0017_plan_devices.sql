-- One plan, several devices (issue 16): a plan may be used by up to `devices` devices at
-- once (a phone and a laptop). The payer adds a device with the receipt and the paying
-- phone; the added device is online until the payment's own time ends (time is shared,
-- never added). One row per added device, once per (payment, device).
ALTER TABLE plans ADD COLUMN devices INTEGER NOT NULL DEFAULT 1
    CHECK (devices BETWEEN 1 AND 10);

CREATE TABLE shared_devices (
    id INTEGER PRIMARY KEY,
    payment_id INTEGER NOT NULL REFERENCES payments (id),
    mac TEXT NOT NULL,
    grant_id INTEGER NOT NULL UNIQUE REFERENCES grants (id),
    until REAL NOT NULL,
    added_at REAL NOT NULL,
    UNIQUE (payment_id, mac)
);
