-- Vouchers that work at every venue of the operator's network (issue 16, docs/HUB.md
-- "Roaming"). The hub arbitrates: a code is claimed there once, by whichever venue asks
-- first; the voucher's home venue learns of a claim and marks its voucher used.

-- The hub claim that used this voucher at another venue (NULL: used here, or unused).
ALTER TABLE vouchers ADD COLUMN claim_id INTEGER;

-- The newest hub claim against this appliance's vouchers already applied here.
ALTER TABLE hub_state ADD COLUMN claims_seen INTEGER NOT NULL DEFAULT 0;

-- Vouchers of other venues redeemed here: one grant per hub claim.
CREATE TABLE roamed_vouchers (
    claim_id INTEGER PRIMARY KEY,
    code TEXT NOT NULL,
    home TEXT NOT NULL,
    mac TEXT NOT NULL,
    grant_id INTEGER NOT NULL UNIQUE REFERENCES grants (id),
    redeemed_at REAL NOT NULL
);

-- A voucher's journal row carries what its plan gives (another venue grants it without the
-- plan) and the claim that used it elsewhere.
DROP TRIGGER hub_journal_voucher_insert;
DROP TRIGGER hub_journal_voucher_update;

CREATE TRIGGER hub_journal_voucher_insert AFTER INSERT ON vouchers BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body)
    SELECT (julianday('now') - 2440587.5) * 86400.0, 'voucher', NEW.id,
        json_object('id', NEW.id, 'code', NEW.code, 'plan_id', NEW.plan_id,
                    'batch', NEW.batch, 'status', NEW.status, 'created_at', NEW.created_at,
                    'valid_until', NEW.valid_until, 'used_at', NEW.used_at,
                    'used_by_mac', NEW.used_by_mac, 'claim_id', NEW.claim_id,
                    'plan_name', p.name, 'seconds', p.duration_seconds,
                    'rate_limit', p.rate_limit, 'data_cap_bytes', p.data_cap_bytes)
    FROM plans p WHERE p.id = NEW.plan_id;
END;

CREATE TRIGGER hub_journal_voucher_update
AFTER UPDATE OF status, used_at, used_by_mac, claim_id ON vouchers
WHEN OLD.status IS NOT NEW.status OR OLD.used_at IS NOT NEW.used_at
     OR OLD.used_by_mac IS NOT NEW.used_by_mac OR OLD.claim_id IS NOT NEW.claim_id
BEGIN
    INSERT INTO hub_journal (at, kind, entity_id, body)
    SELECT (julianday('now') - 2440587.5) * 86400.0, 'voucher', NEW.id,
        json_object('id', NEW.id, 'code', NEW.code, 'plan_id', NEW.plan_id,
                    'batch', NEW.batch, 'status', NEW.status, 'created_at', NEW.created_at,
                    'valid_until', NEW.valid_until, 'used_at', NEW.used_at,
                    'used_by_mac', NEW.used_by_mac, 'claim_id', NEW.claim_id,
                    'plan_name', p.name, 'seconds', p.duration_seconds,
                    'rate_limit', p.rate_limit, 'data_cap_bytes', p.data_cap_bytes)
    FROM plans p WHERE p.id = NEW.plan_id;
END;
