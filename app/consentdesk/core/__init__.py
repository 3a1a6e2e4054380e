"""Qt-free core: domain model, statutory rules, scripts, ledger and backends."""
