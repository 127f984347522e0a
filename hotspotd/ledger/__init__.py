"""The ledger: plans, payments, grants and entitlements, vouchers, recoveries, unmatched money
and the router-change outbox rows, kept in SQLite. The only writer of those tables."""
