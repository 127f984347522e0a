"""SQLite store: connection handling, transactions and migrations."""
