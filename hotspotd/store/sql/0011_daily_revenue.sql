-- The owner dashboard's per-day summary (issue 6): revenue, purchases and completed
-- purchases of each past venue day (`day` = days since 1970-01-01 in the venue's time,
-- `offset_minutes` east of UTC), computed once from `payments` and cached here. Recent days
-- are always computed live; a payment inserted later for a cached day invalidates that day
-- (`daily_revenue_state.payments_seen`: the highest payments.id already accounted for).
CREATE TABLE daily_revenue (
    offset_minutes INTEGER NOT NULL,
    day INTEGER NOT NULL,
    revenue INTEGER NOT NULL,
    purchases INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    computed_at REAL NOT NULL,
    PRIMARY KEY (offset_minutes, day)
) WITHOUT ROWID;

CREATE TABLE daily_revenue_state (
    offset_minutes INTEGER PRIMARY KEY,
    payments_seen INTEGER NOT NULL
);
