"""Storage: one schema on two stores (SQLite, PostgreSQL); dialect quirks stay in the adapters."""
