"""Fixtures for the team-server tests; they and their helpers live in server_support,
which tests import by that unique name (a bare ``conftest`` import is ambiguous)."""

from server_support import api, api_server, pg_url, server_process

__all__ = ["api", "api_server", "pg_url", "server_process"]
