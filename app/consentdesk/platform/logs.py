"""Logging for the app: rotated files in the platform log dir, redacted as a last line of defence.

Code logs through ``logging.getLogger("consentdesk.<area>")`` and never puts phone
numbers, names or consent content in a message. In case one slips through anyway,
every record that reaches our handlers passes :class:`RedactingFilter`, which blanks
anything shaped like a phone number, SIP/tel URI user or e-mail address.
Qt's own messages arrive on ``consentdesk.qt`` (routed by the GUI) and are treated alike.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

import platformdirs

APP = "consentdesk"
LOG_FILE = "consentdesk.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 5
LEVEL_ENV = "CONSENTDESK_LOG_LEVEL"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(process)d] %(message)s"

REDACTED_NUMBER = "[redacted-number]"
REDACTED_EMAIL = "[redacted-email]"
REDACTED_USER = "[redacted]"

_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
# The user part of sip:/sips:/tel: URIs, whatever it looks like (a number or a name).
_URI_USER = re.compile(r"(?i)\b(sips?|tel):(?!\[redacted)[^\s;>@,\"']+")
# A run of digits with the separators people and softphones write (+49 (0)151 123-45 67,
# 0049..., %2B49... from URIs). Not glued to a word, so ids and hashes are left alone.
_NUMBER = re.compile(r"(?<![\w.\-/])(?:\+|%2[Bb])?\(?\d[\d ()\-./]*\d(?![\w\-])")
_MIN_DIGITS = 7
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DECIMAL = re.compile(r"\d+\.\d+")


def _number(match: re.Match[str]) -> str:
    text = match.group(0)
    if sum(ch.isdigit() for ch in text) < _MIN_DIGITS:
        return text
    if _IPV4.fullmatch(text) or _DECIMAL.fullmatch(text) or _ISO_DATE.match(text):
        return text
    return REDACTED_NUMBER


def redact(text: str) -> str:
    """``text`` with phone numbers, SIP/tel URI users and e-mail addresses blanked."""
    text = _URI_USER.sub(lambda m: f"{m.group(1)}:{REDACTED_USER}", text)
    text = _EMAIL.sub(REDACTED_EMAIL, text)
    return _NUMBER.sub(_number, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, exception and stack text through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg} (log arguments did not match the message)"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def default_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP, appauthor=False))


def log_files(log_dir: Path | None = None) -> list[Path]:
    """The current log and its rotated predecessors, newest first."""
    directory = log_dir or default_log_dir()
    current = directory / LOG_FILE
    rotated = [directory / f"{LOG_FILE}.{n}" for n in range(1, BACKUPS + 1)]
    return [path for path in (current, *rotated) if path.is_file()]


def _level(level: int | str | None) -> int:
    if level is None:
        level = os.environ.get(LEVEL_ENV, "INFO")
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r} (use DEBUG, INFO, WARNING or ERROR)")
    return value


def setup_logging(
    *, log_dir: Path | None = None, level: int | str | None = None, console: bool = False
) -> Path | None:
    """Send app logs to a rotated file (and stderr if ``console``); returns the log file.

    ``level`` applies to the ``consentdesk`` loggers (default: ``$CONSENTDESK_LOG_LEVEL``
    or INFO); other libraries log warnings and above. Calling it again replaces the
    handlers it installed before. If the log folder cannot be written, logs go to
    stderr instead and ``None`` is returned: the app still runs.
    """
    app_level = _level(level)
    directory = log_dir or default_log_dir()
    path: Path | None = directory / LOG_FILE
    teardown_logging()
    handlers: list[logging.Handler] = []
    try:
        # Owner-only: even redacted logs describe the agent's work.
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(
            RotatingFileHandler(
                directory / LOG_FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
            )
        )
    except OSError as exc:
        path = None
        console = True
        print(f"consentdesk: cannot write logs in {directory} ({exc.strerror})", file=sys.stderr)
    if console:
        handlers.append(logging.StreamHandler(sys.stderr))
    redactor = RedactingFilter()
    formatter = logging.Formatter(FORMAT)
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        handler.set_name(f"{APP}-{type(handler).__name__}")
        root.addHandler(handler)
    logging.getLogger(APP).setLevel(app_level)
    return path


def teardown_logging() -> None:
    """Remove and close the handlers :func:`setup_logging` installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if (handler.get_name() or "").startswith(f"{APP}-"):
            root.removeHandler(handler)
            handler.close()
