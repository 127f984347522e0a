-- Roaming vouchers (docs/HUB.md "Roaming"): what a voucher gives travels with it, and the
-- hub arbitrates who redeems a code: one claim per code, network-wide.
ALTER TABLE vouchers
    ADD COLUMN plan_name TEXT,
    ADD COLUMN seconds BIGINT,
    ADD COLUMN rate_limit TEXT,
    ADD COLUMN data_cap_bytes BIGINT,
    ADD COLUMN claim_id BIGINT;

CREATE TABLE voucher_claims (
    id BIGSERIAL PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    home_appliance_id BIGINT NOT NULL REFERENCES appliances (id),
    voucher_local_id BIGINT NOT NULL,
    claimed_by BIGINT NOT NULL REFERENCES appliances (id),
    mac TEXT NOT NULL,
    claimed_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX voucher_claims_home ON voucher_claims (home_appliance_id, id);

-- The home venue redeemed a voucher itself (offline, or before it heard of the claim)
-- that another venue had claimed at the hub: both customers keep their time; the operator
-- sees the double redemption here.
CREATE TABLE voucher_conflicts (
    claim_id BIGINT PRIMARY KEY REFERENCES voucher_claims (id),
    home_used_by_mac TEXT,
    home_used_at DOUBLE PRECISION,
    found_at DOUBLE PRECISION NOT NULL
);
