"""The team ledger server: one append-only ledger for every desk, behind /v1.

Needs the ``server`` extra (FastAPI, uvicorn, SQLAlchemy, Alembic, psycopg).
Never imports Qt.
"""
