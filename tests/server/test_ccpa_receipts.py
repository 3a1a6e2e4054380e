"""CCPA requests show in receipts, from either review source: a lead's Kantara
receipt, built from the team server (SQLite and PostgreSQL) or the embedded
ledger, leaves out what an opt-out stopped."""

from __future__ import annotations

import json
from pathlib import Path

from server_records import NUMBER, consent, new_request
from server_support import Api

from consentdesk.domain.export import Controller
from consentdesk.domain.kantara import kantara_receipts
from consentdesk.domain.model import Channel, Jurisdiction, RequestType, to_jsonable
from consentdesk.domain.review import ReviewSource, Role, Viewer
from consentdesk.platform.config import Config
from consentdesk.stores.http_backend import HttpBackend
from consentdesk.stores.http_review import HttpReviewSource
from consentdesk.stores.ledger import EmbeddedLedger
from consentdesk.stores.outbox import Outbox
from consentdesk.stores.review_sql import SqlReviewSource

CONTROLLER = Controller.from_config(Config.load(site_files=[]))
SALE = "Selling or sharing your personal information"
LEAD = Viewer("lena", Role.LEAD, "red")


def _records() -> tuple[list, object]:
    consents = [
        consent(agent="alice", purpose=p, channel=ch, jurisdiction=Jurisdiction.CCPA)
        for p, ch in (("sale-sharing", Channel.ONLINE), ("marketing-offers", Channel.EMAIL))
    ]
    opt_out = new_request(
        agent="alice", type=RequestType.OPT_OUT_SALE, jurisdiction=Jurisdiction.CCPA
    )
    return consents, opt_out


def _purposes(source: ReviewSource) -> dict[str, dict]:
    receipts = kantara_receipts(
        source.customer_history(NUMBER),
        source.catalogue(),
        CONTROLLER,
        requests=source.customer_requests(NUMBER),
    )
    return {
        p["purpose"].split(":")[0]: p
        for receipt in receipts
        for s in receipt["services"]
        for p in s["purposes"]
    }


def test_the_servers_receipt_leaves_out_what_an_opt_out_stopped(api: Api, tmp_path: Path) -> None:
    consents, opt_out = _records()
    lead = HttpBackend(api.url, api.tokens["lena"], outbox=Outbox.for_server(tmp_path, api.url))
    source = HttpReviewSource(lead, LEAD)
    try:
        with api.client("alice") as alice:
            for event in consents:
                posted = alice.post("/v1/consents", content=json.dumps(to_jsonable(event)))
                assert posted.status_code == 201, posted.text
            assert _purposes(source)[SALE]["thirdPartyDisclosure"] is True
            made = alice.post("/v1/requests", content=json.dumps(to_jsonable(opt_out)))
            assert made.status_code == 201, made.text
        assert [r.reference for r in source.customer_requests(NUMBER)] == [opt_out.reference]
        after = _purposes(source)
        assert SALE not in after and "Offers and news from us" in after
    finally:
        lead.close()


def test_the_embedded_receipt_leaves_out_what_an_opt_out_stopped(tmp_path: Path) -> None:
    consents, opt_out = _records()
    with EmbeddedLedger(tmp_path / "ledger.sqlite3") as ledger:
        for event in consents:
            ledger.capture(event)
        source = SqlReviewSource(ledger, Viewer("adam", Role.ADMIN))
        assert SALE in _purposes(source)
        ledger.create_request(opt_out)
        after = _purposes(source)
        assert SALE not in after and "Offers and news from us" in after
