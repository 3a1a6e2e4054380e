"""Consent Desk: consent status and privacy requests beside the softphone."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("consentdesk")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
