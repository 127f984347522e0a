-- A plan's data cap and idle timeout as sold, kept with what was sold (issue 6: a plan
-- edit never alters what was already paid). Each grant carries its plan's cap at the time of
-- the grant; the entitlement carries the idle timeout of its newest grant and a cap marker
-- (non-NULL: some grant of the current run is capped, so RADIUS works out what is left;
-- see billing/data_usage.py). Existing rows take their plan's current terms.
ALTER TABLE grants ADD COLUMN data_cap_bytes INTEGER
    CHECK (data_cap_bytes IS NULL OR data_cap_bytes > 0);
ALTER TABLE entitlements ADD COLUMN data_cap_bytes INTEGER
    CHECK (data_cap_bytes IS NULL OR data_cap_bytes > 0);
ALTER TABLE entitlements ADD COLUMN idle_timeout_seconds INTEGER
    CHECK (idle_timeout_seconds IS NULL OR idle_timeout_seconds > 0);
UPDATE grants SET data_cap_bytes = (SELECT p.data_cap_bytes FROM plans p
                                    WHERE p.id = grants.plan_id);
UPDATE entitlements SET
    data_cap_bytes = (SELECT p.data_cap_bytes FROM plans p WHERE p.id = entitlements.plan_id),
    idle_timeout_seconds = (SELECT p.idle_timeout_seconds FROM plans p
                            WHERE p.id = entitlements.plan_id);
CREATE INDEX grants_running ON grants (mac, expires_at);
