"""The desk's outbox: durable before "recorded", in order, never silently dropped."""

from __future__ import annotations

import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_records import CATALOGUE, NUMBER, SCRIPTS, consent, new_request
from server_support import wait_until

from consentdesk.domain.admission import check_consent, check_new_request, check_subject
from consentdesk.domain.model import DomainError, utcnow
from consentdesk.stores.outbox import (
    ItemKind,
    ItemState,
    Outbox,
    OutboxError,
    outbox_path,
)

SERVER = "https://ledger.example.org"


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.for_server(tmp_path, SERVER)
    yield box
    box.close()


def queue(box: Outbox, n: int = 1) -> list[uuid.UUID]:
    keys = []
    for _ in range(n):
        event = consent(agent="alice")
        box.add(ItemKind.CONSENT, event.event_id, event, subject=event.subject, agent="alice")
        keys.append(event.event_id)
    return keys


def test_items_survive_a_reopen_in_order(tmp_path: Path) -> None:
    box = Outbox.for_server(tmp_path, SERVER)
    keys = queue(box, 5)
    box.close()
    again = Outbox.for_server(tmp_path, SERVER)
    assert [i.key for i in again.pending()] == keys
    assert again.pending_count() == 5
    assert [i.key for i in again.pending(limit=2)] == keys[:2]
    again.close()


def test_same_key_same_record_is_the_waiting_item(outbox: Outbox) -> None:
    event = consent(agent="alice")
    first, added = outbox.add(ItemKind.CONSENT, event.event_id, event, subject=NUMBER, agent="a")
    again, added_again = outbox.add(
        ItemKind.CONSENT, event.event_id, event, subject=NUMBER, agent="a"
    )
    assert added and not added_again and again == first
    other = consent(agent="alice")
    with pytest.raises(DomainError, match="different content"):
        outbox.add(ItemKind.CONSENT, event.event_id, other, subject=NUMBER, agent="a")
    assert outbox.pending_count() == 1


def test_sent_items_leave_rejected_items_stay(outbox: Outbox) -> None:
    queue(outbox, 3)
    first, second, third = outbox.pending()
    outbox.mark_sent(first)
    outbox.mark_rejected(second, "422 Invalid request: unknown purpose")
    outbox.note_failure(third, "cannot reach the team server")
    assert [i.key for i in outbox.pending()] == [third.key]
    assert outbox.pending()[0].attempts == 1
    (kept,) = outbox.rejected()
    assert kept.key == second.key and kept.state == ItemState.REJECTED
    assert kept.last_error == "422 Invalid request: unknown purpose"
    assert kept.payload()["event_id"] == str(second.key)


def test_queries_by_subject_request_and_kind(outbox: Outbox) -> None:
    queue(outbox, 2)
    new = new_request(agent="alice")
    outbox.add(
        ItemKind.REQUEST, new.event_id, new, subject=NUMBER, agent="alice", ref=str(new.request_id)
    )
    assert len(outbox.pending_for(NUMBER)) == 3
    assert outbox.pending_for("+4930123456789") == []
    assert [i.kind for i in outbox.pending_for_request(str(new.request_id))] == [ItemKind.REQUEST]
    assert len(outbox.pending_of_kind(ItemKind.CONSENT)) == 2


def test_meta_keeps_reference_data(outbox: Outbox) -> None:
    assert outbox.meta("catalogue") is None
    outbox.set_meta("catalogue", "{}")
    outbox.set_meta("catalogue", '{"purposes": []}')
    assert outbox.meta("catalogue") == '{"purposes": []}'


def test_one_outbox_per_server(tmp_path: Path) -> None:
    assert outbox_path(tmp_path, SERVER) == outbox_path(tmp_path, SERVER + "/")
    assert outbox_path(tmp_path, SERVER) != outbox_path(tmp_path, "https://other.example.org")


def test_file_is_private_and_wal(tmp_path: Path) -> None:
    box = Outbox.for_server(tmp_path, SERVER)
    queue(box)
    box.close()
    path = outbox_path(tmp_path, SERVER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "content",
    [b"this is a spreadsheet, not a database" * 100, None],
    ids=["not-sqlite", "foreign-sqlite"],
)
def test_a_foreign_file_is_refused_and_left_alone(tmp_path: Path, content: bytes | None) -> None:
    path = outbox_path(tmp_path, SERVER)
    path.parent.mkdir(parents=True)
    if content is None:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER)")
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(OutboxError, match="left as it is"):
        Outbox(path)
    assert path.read_bytes() == before


def test_threads_share_one_outbox(outbox: Outbox) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            queue(outbox, 25)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    items = outbox.pending()
    assert len(items) == 100 and len({i.seq for i in items}) == 100


WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from server_records import consent
from consentdesk.stores.outbox import ItemKind, Outbox
box = Outbox(Path(sys.argv[1]))
while True:
    event = consent(agent="alice")
    box.add(ItemKind.CONSENT, event.event_id, event, subject=event.subject, agent="alice")
    print(event.event_id, flush=True)
"""


def test_every_acknowledged_capture_survives_a_kill(tmp_path: Path) -> None:
    """SIGKILL the desk mid-loop: each capture it reported is in the outbox, intact."""
    path = tmp_path / "outbox.sqlite3"
    acknowledged: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        out = proc.stdout
        wait_until(
            lambda: acknowledged.append(out.readline().strip()) or len(acknowledged) >= 200,
            what="200 acknowledged captures",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    box = Outbox(path)
    stored = {str(i.key): i for i in box.pending()}
    box.close()
    assert set(acknowledged) <= set(stored)
    assert all(i.payload()["event_id"] == key for key, i in stored.items())


def test_admission_checks() -> None:
    event = consent(agent="alice")
    check_consent(event, CATALOGUE, SCRIPTS, utcnow())
    check_new_request(new_request(agent="alice"), SCRIPTS, utcnow())
    assert check_subject(NUMBER) == NUMBER
    for bad in ("+999123456789", "+49", "004915112345678"):
        with pytest.raises(DomainError):
            check_subject(bad)


def test_no_outbox_where_no_folder_can_be(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(OutboxError, match="cannot open"):
        Outbox.for_server(blocker, SERVER)
