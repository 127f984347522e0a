-- The hub journal: every ledger change the operator's hub must see, written by triggers in
-- the same transaction as the change itself, so a crash can never keep one without the
-- other and the ledger code needs no change. The shipper (hotspotd/hub/shipper.py) sends
-- rows in seq order and advances hub_state.shipped_seq only from the hub's acknowledgement.
-- AUTOINCREMENT: a seq is never reused, even after shipped rows are deleted.
CREATE TABLE hub_journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    entity_id,
    body TEXT NOT NULL
);

-- One row: where shipping stands, and this appliance's enrolment (key encrypted with the
-- appliance's secret box, never in clear).
CREATE TABLE hub_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    shipped_seq INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_ok_at REAL,
    hub_url TEXT,
    ca_file TEXT,
    appliance_id INTEGER,
    key_enc TEXT,
    enrolled_at REAL
);
INSERT INTO hub_state (id, shipped_seq) VALUES (1, 0);

-- Phone numbers leave the appliance masked (2547*****678, the appliance's log form): the hub
-- shows money and counts, not who paid.
CREATE TRIGGER hub_journal_payment_insert AFTER INSERT ON payments BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body) VALUES (
        (julianday('now') - 2440587.5) * 86400.0, 'payment', NEW.id,
        json_object('id', NEW.id, 'public_id', NEW.public_id, 'plan_id', NEW.plan_id,
                    'mac', NEW.mac, 'phone_masked',
                    substr(NEW.phone, 1, 4) || '*****' || substr(NEW.phone, -3),
                    'amount', NEW.amount, 'status', NEW.status,
                    'result_code', NEW.result_code, 'receipt', NEW.receipt,
                    'paid_amount', NEW.paid_amount, 'channel', NEW.channel,
                    'created_at', NEW.created_at, 'settled_at', NEW.settled_at));
END;

-- Only the columns that change what the payment is worth; the polling columns
-- (query_count, next_query_at, push_state...) churn and stay local.
CREATE TRIGGER hub_journal_payment_update
AFTER UPDATE OF status, receipt, paid_amount, settled_at ON payments
WHEN OLD.status IS NOT NEW.status OR OLD.receipt IS NOT NEW.receipt
     OR OLD.paid_amount IS NOT NEW.paid_amount OR OLD.settled_at IS NOT NEW.settled_at
BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body) VALUES (
        (julianday('now') - 2440587.5) * 86400.0, 'payment', NEW.id,
        json_object('id', NEW.id, 'public_id', NEW.public_id, 'plan_id', NEW.plan_id,
                    'mac', NEW.mac, 'phone_masked',
                    substr(NEW.phone, 1, 4) || '*****' || substr(NEW.phone, -3),
                    'amount', NEW.amount, 'status', NEW.status,
                    'result_code', NEW.result_code, 'receipt', NEW.receipt,
                    'paid_amount', NEW.paid_amount, 'channel', NEW.channel,
                    'created_at', NEW.created_at, 'settled_at', NEW.settled_at));
END;

CREATE TRIGGER hub_journal_grant_insert AFTER INSERT ON grants BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body) VALUES (
        (julianday('now') - 2440587.5) * 86400.0, 'grant', NEW.id,
        json_object('id', NEW.id, 'mac', NEW.mac, 'plan_id', NEW.plan_id,
                    'payment_id', NEW.payment_id, 'voucher_id', NEW.voucher_id,
                    'receipt', NEW.receipt, 'source', NEW.source, 'seconds', NEW.seconds,
                    'starts_at', NEW.starts_at, 'expires_at', NEW.expires_at,
                    'created_at', NEW.created_at));
END;

CREATE TRIGGER hub_journal_voucher_insert AFTER INSERT ON vouchers BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body) VALUES (
        (julianday('now') - 2440587.5) * 86400.0, 'voucher', NEW.id,
        json_object('id', NEW.id, 'code', NEW.code, 'plan_id', NEW.plan_id,
                    'batch', NEW.batch, 'status', NEW.status, 'created_at', NEW.created_at,
                    'valid_until', NEW.valid_until, 'used_at', NEW.used_at,
                    'used_by_mac', NEW.used_by_mac));
END;

CREATE TRIGGER hub_journal_voucher_update
AFTER UPDATE OF status, used_at, used_by_mac ON vouchers
WHEN OLD.status IS NOT NEW.status OR OLD.used_at IS NOT NEW.used_at
     OR OLD.used_by_mac IS NOT NEW.used_by_mac
BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body) VALUES (
        (julianday('now') - 2440587.5) * 86400.0, 'voucher', NEW.id,
        json_object('id', NEW.id, 'code', NEW.code, 'plan_id', NEW.plan_id,
                    'batch', NEW.batch, 'status', NEW.status, 'created_at', NEW.created_at,
                    'valid_until', NEW.valid_until, 'used_at', NEW.used_at,
                    'used_by_mac', NEW.used_by_mac));
END;

-- Devices on insert only: last_seen changes with every request and would flood the stream.
CREATE TRIGGER hub_journal_device_insert AFTER INSERT ON devices BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body) VALUES (
        (julianday('now') - 2440587.5) * 86400.0, 'device', NEW.mac,
        json_object('mac', NEW.mac, 'first_seen', NEW.first_seen));
END;

CREATE TRIGGER hub_journal_unmatched_insert AFTER INSERT ON unmatched_payments BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body) VALUES (
        (julianday('now') - 2440587.5) * 86400.0, 'unmatched', NEW.id,
        json_object('id', NEW.id, 'source', NEW.source, 'receipt', NEW.receipt,
                    'amount', NEW.amount, 'phone_masked',
                    substr(NEW.phone, 1, 4) || '*****' || substr(NEW.phone, -3),
                    'reason', NEW.reason, 'received_at', NEW.received_at,
                    'resolved_at', NEW.resolved_at));
END;

CREATE TRIGGER hub_journal_unmatched_update AFTER UPDATE OF resolved_at ON unmatched_payments
WHEN OLD.resolved_at IS NOT NEW.resolved_at
BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body) VALUES (
        (julianday('now') - 2440587.5) * 86400.0, 'unmatched', NEW.id,
        json_object('id', NEW.id, 'source', NEW.source, 'receipt', NEW.receipt,
                    'amount', NEW.amount, 'phone_masked',
                    substr(NEW.phone, 1, 4) || '*****' || substr(NEW.phone, -3),
                    'reason', NEW.reason, 'received_at', NEW.received_at,
                    'resolved_at', NEW.resolved_at));
END;
