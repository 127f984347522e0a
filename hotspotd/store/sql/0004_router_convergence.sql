-- Issue 4: router convergence. Optional per-plan data cap and idle timeout (sent to the
-- router as Mikrotik-Total-Limit(+Gigawords) and Idle-Timeout), and the indexes the
-- RADIUS / presence / reconcile paths read by.
ALTER TABLE plans ADD COLUMN data_cap_bytes INTEGER CHECK (data_cap_bytes IS NULL OR data_cap_bytes > 0);
ALTER TABLE plans ADD COLUMN idle_timeout_seconds INTEGER
    CHECK (idle_timeout_seconds IS NULL OR idle_timeout_seconds > 0);
CREATE INDEX radius_sessions_ip ON radius_sessions (framed_ip, status);
CREATE INDEX radius_sessions_status ON radius_sessions (status, mac);
CREATE INDEX devices_last_ip ON devices (last_ip);
CREATE INDEX entitlements_expires ON entitlements (expires_at);
CREATE INDEX router_ops_mac ON router_ops (mac, state, action);
