"""The ledger file on disk: foreign and damaged files, read-only folders, migrations, crashes."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_support import NUMBER, consent, make_ledger

from consentdesk.domain.backend import BackendError, IntegrityError
from consentdesk.stores import ledger as ledger_mod
from consentdesk.stores.ledger import (
    FILE_NAME,
    EmbeddedLedger,
    LedgerCorrupt,
    LedgerReadOnly,
    LedgerTooNew,
    open_ledger,
    schema_version,
)

# --- files that are not (intact) ledgers ---------------------------------------------


def _ledger_with_events(path: Path, n: int = 40) -> None:
    with make_ledger(path) as led:
        for i in range(n):
            led.capture(consent(f"+4915100000{i:03d}", agent="agent-" + "x" * 200))


def _foreign_sqlite(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY, body TEXT)")
    raw.execute("INSERT INTO entries (body) VALUES ('someone else''s data')")
    raw.commit()
    raw.close()


def _foreign_wal_sqlite(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE notes (text TEXT)")
    raw.commit()
    raw.close()


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(64 * 1024))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated_half(path: Path) -> None:
    _ledger_with_events(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_header(path: Path) -> None:
    _ledger_with_events(path)
    path.write_bytes(path.read_bytes()[:60])


def _newer_schema(path: Path) -> None:
    _ledger_with_events(path, 2)
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {schema_version() + 1}")
    raw.close()


def _damaged_pages(path: Path) -> None:
    """Our header intact, every later page garbage (a bad sector, a failed copy)."""
    _ledger_with_events(path)
    data = path.read_bytes()
    page = int.from_bytes(data[16:18], "big")
    path.write_bytes(data[:page] + os.urandom(len(data) - page))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_random_bytes, "not an SQLite database"),
        (_foreign_sqlite, "another program's SQLite database"),
        (_foreign_wal_sqlite, "another program's SQLite database"),
        (_empty, "empty file"),
        (_truncated_half, "truncated"),
        (_truncated_header, "truncated"),
        (_newer_schema, "newer Consent Desk"),
        (_damaged_pages, "damaged"),
    ],
)
def test_foreign_or_damaged_file_is_refused_and_left_untouched(
    data_dir: Path, make: object, message: str
) -> None:
    path = data_dir / FILE_NAME
    make(path)  # type: ignore[operator]
    before = path.read_bytes()
    names_before = sorted(p.name for p in data_dir.iterdir())
    with pytest.raises(LedgerCorrupt) as caught:
        open_ledger(data_dir)
    text = str(caught.value)
    assert isinstance(caught.value, IntegrityError)
    assert message in text and str(path) in text
    assert "\n" not in text
    assert path.read_bytes() == before
    assert sorted(p.name for p in data_dir.iterdir()) == names_before


def test_newer_schema_has_its_own_error_class(data_dir: Path) -> None:
    _newer_schema(data_dir / FILE_NAME)
    with pytest.raises(LedgerTooNew):
        open_ledger(data_dir)


def test_a_folder_in_place_of_the_file_is_refused(data_dir: Path) -> None:
    (data_dir / FILE_NAME).mkdir()
    with pytest.raises(LedgerCorrupt, match="is a folder"):
        open_ledger(data_dir)


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.write_text("not a folder")
    with pytest.raises(BackendError, match="data folder"):
        open_ledger(target)


def test_concurrent_first_opens_make_one_ledger(data_dir: Path) -> None:
    barrier = threading.Barrier(4)
    opened: list[EmbeddedLedger] = []
    errors: list[BaseException] = []

    def first_open() -> None:
        barrier.wait()
        try:
            opened.append(make_ledger(data_dir / FILE_NAME))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_open) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, led in enumerate(opened):
        led.capture(consent(at=consent().at.replace(second=i)))
    assert {led.count() for led in opened} == {4}
    for led in opened:
        led.close()
    assert sorted(p.name for p in data_dir.iterdir()) == [FILE_NAME]


# --- read-only places ------------------------------------------------------------------
# Root ignores permission bits, so as root the open runs in a forked child that
# has become "nobody" (uid 65534) first.

NOBODY = 65534


def _open_without_privileges(data_dir: Path) -> tuple[bool, str]:
    """(refused as read-only, message) for opening *data_dir* without root's powers."""
    if os.geteuid() != 0:
        try:
            open_ledger(data_dir).close()
        except LedgerReadOnly as exc:
            return True, str(exc)
        return False, ""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a threaded process; the child only
        # makes system calls and SQLite calls, then leaves with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                open_ledger(data_dir).close()
                code = 0
            except LedgerReadOnly as exc:
                os.write(write_end, str(exc).encode())
                code = 3
        except BaseException as exc:
            os.write(write_end, repr(exc).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 3), message
    return code == 3, message


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder "nobody" can reach (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="consentdesk-ro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in [path, *path.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(path)


def test_read_only_data_dir_without_a_ledger(shared_dir: Path) -> None:
    data = shared_dir / "data"
    data.mkdir()
    data.chmod(0o555)
    refused, message = _open_without_privileges(data)
    assert refused
    assert "read-only" in message and str(data / FILE_NAME) in message
    assert list(data.iterdir()) == []


@pytest.mark.parametrize("lock_folder", [True, False])
def test_read_only_ledger_is_refused_and_untouched(shared_dir: Path, lock_folder: bool) -> None:
    data = shared_dir / "data"
    data.mkdir()
    _ledger_with_events(data / FILE_NAME, 3)
    before = (data / FILE_NAME).read_bytes()
    (data / FILE_NAME).chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    data.chmod(0o555 if lock_folder else 0o777)
    refused, message = _open_without_privileges(data)
    assert refused
    assert "read-only" in message and str(data / FILE_NAME) in message
    assert "\n" not in message
    assert (data / FILE_NAME).read_bytes() == before
    assert sorted(p.name for p in data.iterdir()) == [FILE_NAME]


def test_uncreatable_data_dir(shared_dir: Path) -> None:
    shared_dir.chmod(0o555)
    refused, message = _open_without_privileges(shared_dir / "data")
    assert refused
    assert "cannot create data folder" in message


# --- migrations --------------------------------------------------------------------------


def test_migrations_run_in_order_once(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = data_dir / FILE_NAME
    with make_ledger(path) as led:
        receipt = led.capture(consent())
    step = ("CREATE TABLE flags (seq INTEGER PRIMARY KEY, note TEXT)",)
    released = schema_version()
    monkeypatch.setattr(ledger_mod, "MIGRATIONS", (*ledger_mod.MIGRATIONS, step))
    with make_ledger(path) as led:
        assert led.history(NUMBER)[0].event_id == receipt.event_id
        assert led.verify().ok
    with make_ledger(path) as led:  # already current: nothing re-applied
        assert led.count() == 1
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == released + 1
        assert raw.execute("SELECT count(*) FROM flags").fetchone()[0] == 0
    finally:
        raw.close()


def test_a_failing_migration_changes_nothing(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = data_dir / FILE_NAME
    with make_ledger(path) as led:
        led.capture(consent())
    broken = ("CREATE TABLE flags (seq INTEGER PRIMARY KEY)", "CREATE TABLE flags (x)")
    with monkeypatch.context() as patch:
        patch.setattr(ledger_mod, "MIGRATIONS", (*ledger_mod.MIGRATIONS, broken))
        with pytest.raises(BackendError, match="cannot upgrade"):
            make_ledger(path)
    with make_ledger(path) as led:
        assert led.count() == 1 and led.verify().ok
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == schema_version()
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}
        assert "flags" not in names
    finally:
        raw.close()


def _schema(path: Path) -> set[tuple[str, str]]:
    raw = sqlite3.connect(path)
    try:
        return set(raw.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
    finally:
        raw.close()


# What the review window did to ledgers of schema 1 before its indexes were a migration.
_LAZY_REVIEW_INDEXES = (
    ("review_at", "CREATE INDEX review_at ON entries (at, seq)"),
    ("review_call", "CREATE INDEX review_call ON entries (json_extract(body, '$.call_id'))"),
)


@pytest.mark.parametrize("lazy", [(), _LAZY_REVIEW_INDEXES], ids=["plain", "lazily-indexed"])
def test_a_schema_1_ledger_is_upgraded_to_the_new_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lazy: tuple[tuple[str, str], ...]
) -> None:
    fresh = tmp_path / "fresh.sqlite3"
    make_ledger(fresh).close()
    old = tmp_path / "old.sqlite3"
    with monkeypatch.context() as patch:
        patch.setattr(ledger_mod, "MIGRATIONS", ledger_mod.MIGRATIONS[:1])
        with make_ledger(old) as led:
            receipt = led.capture(consent())
    raw = sqlite3.connect(old)
    for _name, statement in lazy:
        raw.execute(statement)
    raw.commit()
    raw.close()
    assert {n for n, _ in _schema(old) if n.startswith("review_")} == {n for n, _ in lazy}
    with make_ledger(old) as led:
        assert led.history(NUMBER)[0].event_id == receipt.event_id
        assert led.verify().ok
    # Upgraded, the file has exactly the tables, indexes and triggers of a new one.
    assert _schema(old) == _schema(fresh)
    assert set(lazy) <= _schema(fresh)
    review = {n for n, _ in _schema(fresh) if n.startswith("review_")}
    assert review == {
        "review_" + x for x in ("at", "kind", "agent", "purpose", "action", "call", "tail")
    }


# --- durability --------------------------------------------------------------------------

_CAPTURE_LOOP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from ledger_support import consent, make_ledger

    led = make_ledger(Path(sys.argv[1]))
    i = 0
    while True:
        event = consent(f"+4915100{i % 50:06d}", agent=f"agent-{i}")
        led.capture(event)
        print(event.event_id, flush=True)
        i += 1
    """
)


def test_every_acknowledged_capture_survives_sigkill(data_dir: Path) -> None:
    path = data_dir / FILE_NAME
    acknowledged: list[str] = []
    unacknowledged: set[str] = set()
    for round_ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", _CAPTURE_LOOP, str(path), str(Path(__file__).parent)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        seen = 0
        while seen < 25 + 10 * round_:
            line = child.stdout.readline()
            assert line.endswith("\n"), child.stderr.read() if child.stderr else ""
            acknowledged.append(line.strip())
            seen += 1
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        # Lines already in the pipe were acknowledged too; a cut-off last line was not.
        acknowledged += [line for line in out.split("\n")[:-1] if line]

        with make_ledger(path) as led:
            recorded = {str(e.event_id) for i in range(50) for e in led.history(f"+4915100{i:06d}")}
            assert set(acknowledged) <= recorded
            # At most the capture in flight got in without being acknowledged.
            in_flight = recorded - set(acknowledged) - unacknowledged
            assert len(in_flight) <= 1
            unacknowledged |= in_flight
            assert led.count() == len(recorded)
            result = led.verify()
            assert result.ok, result
            assert result.count == len(recorded)
