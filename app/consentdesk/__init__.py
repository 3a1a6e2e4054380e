"""Consent Desk: consent status and privacy requests beside the softphone."""

# The single source of the version (pyproject reads it); a constant, because
# importlib.metadata costs tens of milliseconds on every softphone hand-off.
__version__ = "0.1.0"

__all__ = ["__version__"]
