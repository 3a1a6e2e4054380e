"""The team-server token: in the OS keyring only, one per server URL.

Where no keyring backend exists (headless Linux), :class:`KeyringUnavailable`
says so and the desk takes ``CONSENTDESK_TOKEN`` from the environment instead.
The token is never written to a file by this app.
"""

from __future__ import annotations

import os

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail

from consentdesk.domain.backend import BackendError

SERVICE = "consentdesk"
TOKEN_ENV = "CONSENTDESK_TOKEN"


class KeyringUnavailable(BackendError):
    """No OS keyring to keep the token in."""


def _username(server_url: str) -> str:
    return server_url.strip().rstrip("/")


def _backend() -> KeyringBackend:
    backend = keyring.get_keyring()
    empty_chain = isinstance(backend, chainer.ChainerBackend) and not backend.backends
    if isinstance(backend, fail.Keyring) or empty_chain:
        raise KeyringUnavailable(
            "no OS keyring is available to keep the sign-in token; "
            f"set {TOKEN_ENV} in the environment instead"
        )
    return backend


def keyring_available() -> bool:
    try:
        _backend()
    except KeyringUnavailable:
        return False
    return True


def get_token(server_url: str) -> str | None:
    try:
        return _backend().get_password(SERVICE, _username(server_url))
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"the OS keyring cannot be read: {exc}") from None


def set_token(server_url: str, token: str) -> None:
    token = token.strip()
    if not token:
        raise ValueError("the token is empty")
    try:
        _backend().set_password(SERVICE, _username(server_url), token)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"the OS keyring cannot store the token: {exc}") from None


def delete_token(server_url: str) -> None:
    """Forget the token (signing out); no error if there was none."""
    try:
        _backend().delete_password(SERVICE, _username(server_url))
    except keyring.errors.PasswordDeleteError:
        return
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"the OS keyring cannot remove the token: {exc}") from None


def env_token() -> str | None:
    value = os.environ.get(TOKEN_ENV, "").strip()
    return value or None


def resolve_token(server_url: str) -> str | None:
    """The keyring's token for *server_url*, else ``CONSENTDESK_TOKEN``."""
    try:
        stored = get_token(server_url)
    except KeyringUnavailable:
        stored = None
    return stored or env_token()


# --- the SMTP password for receipt e-mails ------------------------------------------

SMTP_PASSWORD_ENV = "CONSENTDESK_SMTP_PASSWORD"


def _smtp_username(host: str, user: str) -> str:
    return f"smtp:{user}@{host.strip().lower()}"


def set_smtp_password(host: str, user: str, password: str) -> None:
    if not password:
        raise ValueError("the password is empty")
    try:
        _backend().set_password(SERVICE, _smtp_username(host, user), password)
    except keyring.errors.KeyringError as exc:
        raise KeyringUnavailable(f"the OS keyring cannot store the password: {exc}") from None


def smtp_password(host: str, user: str) -> str | None:
    """The keyring's SMTP password for *user* at *host*, else ``CONSENTDESK_SMTP_PASSWORD``."""
    try:
        stored = _backend().get_password(SERVICE, _smtp_username(host, user))
    except (KeyringUnavailable, keyring.errors.KeyringError):
        stored = None
    return stored or os.environ.get(SMTP_PASSWORD_ENV) or None
