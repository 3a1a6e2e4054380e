"""Log setup and the redaction filter that keeps personal data out of log files."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path

import pytest

from consentdesk.platform import logs
from consentdesk.platform.logs import REDACTED_EMAIL, REDACTED_NUMBER, redact, setup_logging


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "log"
    yield directory
    logs.teardown_logging()


@pytest.mark.parametrize(
    "number",
    [
        "+4915112345678",
        "+49 151 12345678",
        "+49 (0)151 123-45-678",
        "015112345678",
        "0151 1234 5678",
        "030/1234567",
        "0049 30 1234567",
        "(212) 555-1234",
        "212.555.1234",
        "%2B4915112345678",
    ],
)
def test_phone_numbers_in_any_format_are_blanked(number: str) -> None:
    assert redact(f"lookup for {number} took 3 ms") == f"lookup for {REDACTED_NUMBER} took 3 ms"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("caller=+4915112345678;", f"caller={REDACTED_NUMBER};"),
        ("sip:+4915112345678@pbx.example.com", "sip:[redacted]@pbx.example.com"),
        ("<sip:alice@pbx>;tag=1", "<sip:[redacted]@pbx>;tag=1"),
        ("tel:+1-212-555-1234", "tel:[redacted]"),
        ("mail anna.schmidt+news@example.co.uk now", f"mail {REDACTED_EMAIL} now"),
        (
            "consentdesk://call?number=%2B4915112345678&id=a1",
            f"consentdesk://call?number={REDACTED_NUMBER}&id=a1",
        ),
    ],
)
def test_uris_and_emails_are_blanked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "connected to 127.0.0.1:4444",
        "due 2026-05-09, captured 2026-05-09T12:30:45+00:00",
        "PySide6 6.12.0, Python 3.11.7",
        "call id 550e8400-e29b-41d4-a716-446655440000",
        "script hash 3f9a8c0d1e2b4a6f",
        "event 42 of 1200 in 12.5 ms",
        "reference DSR-2026-000123",
        "rotated /tmp/log/consentdesk.log.1",
    ],
)
def test_diagnostics_survive(text: str) -> None:
    assert redact(text) == text


def test_redaction_is_idempotent() -> None:
    once = redact("sip:+4915112345678@host and anna@example.com and 015112345678")
    assert redact(once) == once


def test_file_log_redacts_messages_arguments_and_tracebacks(log_dir: Path) -> None:
    path = setup_logging(log_dir=log_dir, level="DEBUG")
    log = logging.getLogger("consentdesk.telephony")
    log.info("incoming call from %s", "+49 151 12345678")
    try:
        raise ValueError("cannot normalise 015112345678 for anna@example.com")
    except ValueError:
        log.exception("lookup failed")
    logging.getLogger("consentdesk.qt").warning("qt.qpa: window for sip:0301234567@pbx")
    logs.teardown_logging()
    text = path.read_text(encoding="utf-8")
    assert "12345678" not in text
    assert "0301234567" not in text
    assert "anna@example.com" not in text
    assert "consentdesk.telephony" in text
    assert "incoming call from [redacted-number]" in text
    assert "Traceback" in text and "ValueError: cannot normalise [redacted-number]" in text
    assert "consentdesk.qt" in text and "sip:[redacted]@pbx" in text


def test_levels_apply_to_app_loggers_and_libraries_stay_at_warning(log_dir: Path) -> None:
    path = setup_logging(log_dir=log_dir, level="INFO")
    logging.getLogger("consentdesk.ledger").debug("debug detail")
    logging.getLogger("consentdesk.ledger").info("ledger opened")
    logging.getLogger("httpx").info("library chatter")
    logging.getLogger("httpx").warning("library warning")
    logs.teardown_logging()
    text = path.read_text(encoding="utf-8")
    assert "ledger opened" in text and "library warning" in text
    assert "debug detail" not in text and "library chatter" not in text


def test_handlers_rotate_and_setup_is_idempotent(log_dir: Path) -> None:
    setup_logging(log_dir=log_dir)
    setup_logging(log_dir=log_dir)
    ours = [
        h for h in logging.getLogger().handlers if (h.get_name() or "").startswith("consentdesk-")
    ]
    assert len(ours) == 1
    assert isinstance(ours[0], RotatingFileHandler)
    assert ours[0].maxBytes == logs.MAX_BYTES and ours[0].backupCount == logs.BACKUPS
    logs.teardown_logging()
    assert not [h for h in logging.getLogger().handlers if h in ours]


def test_default_log_dir_is_the_platform_one(log_dir: Path) -> None:
    path = setup_logging()
    assert path.parent == logs.default_log_dir()
    assert "consentdesk" in str(path.parent)


def test_level_from_environment_and_bad_level(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(logs.LEVEL_ENV, "debug")
    setup_logging(log_dir=log_dir)
    assert logging.getLogger("consentdesk").level == logging.DEBUG
    with pytest.raises(ValueError, match="unknown log level 'chatty'"):
        setup_logging(log_dir=log_dir, level="chatty")


def test_log_files_lists_current_then_rotated(tmp_path: Path) -> None:
    for name in ("consentdesk.log", "consentdesk.log.2", "consentdesk.log.1", "other.txt"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert [p.name for p in logs.log_files(tmp_path)] == [
        "consentdesk.log",
        "consentdesk.log.1",
        "consentdesk.log.2",
    ]


def test_unwritable_log_folder_falls_back_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    try:
        assert setup_logging(log_dir=blocker / "log") is None
        assert "cannot write logs in" in capsys.readouterr().err
        logging.getLogger("consentdesk.gui").warning("still logged for 015112345678")
        err = capsys.readouterr().err
        assert "still logged for [redacted-number]" in err
    finally:
        logs.teardown_logging()
