"""Stores the desk talks to: the embedded SQLite ledger and the team server's HTTP client."""
