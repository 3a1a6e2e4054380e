"""The legal kernel: what a consent record is, when it may be admitted and what it means.

Pure: it imports nothing of Consent Desk outside this package, no Qt, no
storage and no network. Both ledgers and the team server are adapters on it.
"""
