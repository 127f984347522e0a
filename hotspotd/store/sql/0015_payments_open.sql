-- The open payments (status 'pending') from small partial indexes, whatever the table's
-- statistics say: the reconciler's round (every few seconds: the line's expiry, then every
-- pending payment) and the restart's recovery read exactly these. Once the table has
-- statistics (ANALYZE, PRAGMA optimize) `status` looks unselective (a few values over a
-- year of payments), and the planner scanned a million payments by id, or by created_at,
-- instead: 0.1-0.2 s per round, inside the line's write transaction, and seconds at a
-- cold start on an SD card.
CREATE INDEX payments_open ON payments (id) WHERE status = 'pending';
CREATE INDEX payments_in_line ON payments (created_at)
    WHERE queued_at IS NOT NULL AND status = 'pending';
