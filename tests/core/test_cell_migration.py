"""A ledger whose cell projection was kept by arrival order is re-decided by
event time when it is opened (the kernel's status rule, migration step 3)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from ledger_support import NUMBER, T0, Clock, consent, make_ledger

from consentdesk.domain.model import Channel, ConsentState
from consentdesk.stores import ledger as ledger_mod
from consentdesk.stores.ledger import FILE_NAME


def test_an_arrival_order_projection_is_re_decided_on_open(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    withdrawn = consent(state=ConsentState.WITHDRAWN, at=T0 - timedelta(hours=1))
    older = consent(at=T0 - timedelta(hours=2))
    with make_ledger(path, Clock()) as led:
        led.capture(withdrawn)
        led.capture(older)  # synced late from an offline desk
        assert led.status(NUMBER).cell("marketing", Channel.PHONE).state == ConsentState.WITHDRAWN
    # What an older desk version left: the last arrival decides, at the schema before.
    raw = sqlite3.connect(path)
    try:
        with raw:
            raw.execute(
                "UPDATE consent_cells SET seq = (SELECT max(seq) FROM consent_index"
                " WHERE consent_index.subject = consent_cells.subject)"
            )
            raw.execute(f"PRAGMA user_version = {len(ledger_mod.MIGRATIONS) - 1}")
        assert raw.execute("SELECT seq FROM consent_cells").fetchall() == [(2,)]
    finally:
        raw.close()
    with make_ledger(path, Clock()) as led:
        cell = led.status(NUMBER).cell("marketing", Channel.PHONE)
        assert cell.state == ConsentState.WITHDRAWN and cell.event == withdrawn
        assert led.verify().ok


def test_verify_finds_a_projection_that_disagrees_with_event_time(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    with make_ledger(path, Clock()) as led:
        led.capture(consent(state=ConsentState.WITHDRAWN, at=T0 - timedelta(hours=1)))
        led.capture(consent(at=T0 - timedelta(hours=2)))
    raw = sqlite3.connect(path)
    try:
        with raw:
            raw.execute("UPDATE consent_cells SET seq = 2")
    finally:
        raw.close()
    with make_ledger(path, Clock()) as led:
        result = led.verify()
    assert not result.ok
