-- Paid time moving between the venues of a network (docs/HUB.md "Roaming"): one move per
-- M-Pesa receipt, network-wide.
CREATE TABLE time_claims (
    id BIGSERIAL PRIMARY KEY,
    receipt TEXT NOT NULL UNIQUE,
    home_appliance_id BIGINT NOT NULL REFERENCES appliances (id),
    payment_local_id BIGINT NOT NULL,
    claimed_by BIGINT NOT NULL REFERENCES appliances (id),
    mac TEXT NOT NULL,
    seconds BIGINT NOT NULL CHECK (seconds > 0),
    claimed_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX time_claims_home ON time_claims (home_appliance_id, id);
