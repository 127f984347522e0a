-- The purchase limits count a source address's purchases too (issue 12): an address holds
-- one device at a time, so a client that changes its MAC but keeps its address is still
-- one device to them.
CREATE INDEX payments_ip ON payments (ip, created_at) WHERE ip IS NOT NULL;
