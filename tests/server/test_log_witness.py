"""The team server's log over HTTP, and the server as the witness of desk ledgers.

A real ``consentdesk serve`` process on PostgreSQL with a log key; desks are
real ``consentdesk`` processes sharing a file-backed keyring. The server's
proofs verify against its signed checkpoint and public key alone; a desk
ledger truncated (or truncated and re-extended) while offline is refused at
the next witnessing, naming what is missing.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from server_records import consent
from server_support import ServerProcess, postgres_database, seed_users

from consentdesk.domain import merkle, tlog
from consentdesk.domain.checkpoint import SignedNote, Signer, verify_note
from consentdesk.domain.model import to_jsonable
from consentdesk.server import db, log_store
from consentdesk.stores.ledger import FILE_NAME

SIGNER = Signer.generate("team-ledger.test.example")
CLI_HELPERS = Path(__file__).resolve().parents[1] / "cli"


@pytest.fixture
def server(
    monkeypatch: pytest.MonkeyPatch, server_process: Callable[..., ServerProcess]
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    monkeypatch.setenv(log_store.KEY_ENV, SIGNER.text())
    with postgres_database("cdwit") as url:
        engine = db.make_engine(url)
        db.upgrade(engine)
        tokens = seed_users(engine)
        engine.dispose()
        yield server_process(url), tokens


def _b(items: list[str]) -> list[bytes]:
    return [base64.b64decode(p) for p in items]


def test_proofs_from_the_server_verify_against_its_signed_checkpoint(
    server: tuple[ServerProcess, dict[str, str]],
) -> None:
    proc, tokens = server
    headers = {"Authorization": f"Bearer {tokens['alice']}"}
    events = [consent(agent="alice", call_id=f"c{i}") for i in range(5)]
    with httpx.Client(base_url=proc.url, headers=headers, timeout=30) as client:
        for event in events:
            response = client.post("/v1/consents", content=json.dumps(to_jsonable(event)))
            assert response.status_code == 201, response.text
        note = SignedNote.parse(client.get("/v1/log/checkpoint").text)
        cp = verify_note(note, SIGNER.verifier())
        assert cp.size == 5
        proof = client.get("/v1/log/proof/inclusion", params={"event_id": str(events[2].event_id)})
        assert proof.status_code == 200, proof.text
        body = proof.json()
        assert (body["index"], body["size"]) == (2, 5)
        # The leaf is the entry as the server stored it: checked through the entry's bytes.
        by_index = client.get("/v1/log/proof/inclusion", params={"index": 2}).json()
        assert by_index["proof"] == body["proof"]
        consistency = client.get("/v1/log/proof/consistency", params={"old": 3}).json()
        early = client.get("/v1/log/proof/inclusion", params={"index": 0, "size": 3}).json()
        missing = client.get("/v1/log/proof/inclusion", params={"index": 9})
    assert missing.status_code == 404
    engine = db.make_engine(proc.database_url)
    with engine.connect() as conn:
        rows = conn.execute(log_store._ENTRY_LEAVES).all()
        node = log_store.reader(conn)
        root3 = merkle.tree_root(3, node)
    engine.dispose()
    leaves = [log_store._leaf(*r) for r in rows]
    merkle.verify_inclusion(2, 5, leaves[2], _b(body["proof"]), cp.root)
    merkle.verify_inclusion(0, 3, leaves[0], _b(early["proof"]), root3)
    merkle.verify_consistency(3, 5, root3, cp.root, _b(consistency["proof"]))
    assert merkle.root_of(leaves) == cp.root


class Desk:
    def __init__(self, tmp: Path, server_url: str, token: str) -> None:
        self.data = tmp / "desk"
        path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(CLI_HELPERS)) if p)
        self.env = {
            **os.environ,
            "PYTHON_KEYRING_BACKEND": "file_keyring.FileKeyring",
            "CONSENTDESK_TEST_KEYRING": str(tmp / "keyring.json"),
            "PYTHONPATH": path,
            "CONSENTDESK_TOKEN": token,
        }
        self.server_url = server_url

    def run(self, *args: str) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-m", "consentdesk", "--data-dir", str(self.data), *args],
            capture_output=True, text=True, timeout=60, env=self.env, check=False,
        )  # fmt: skip
        return done.returncode, done.stdout + done.stderr

    def consent(self) -> None:
        code, out = self.run(
            "consent", "0151 12345678", "--purpose", "customer-survey", "--channel", "phone",
            "--state", "given", "--script", "consent-general", "--lang", "de", "--agent", "alice",
            "--agent-name", "Alice",
        )  # fmt: skip
        assert code == 0, out

    def witness(self) -> tuple[int, str]:
        return self.run("ledger", "witness", "--server", self.server_url)

    def truncate_from(self, first: int) -> None:
        conn = sqlite3.connect(self.data / FILE_NAME, isolation_level=None)
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DELETE FROM consent_index WHERE seq >= ?", (first,))
        conn.execute("DELETE FROM entries WHERE seq >= ?", (first,))
        conn.execute("DELETE FROM log_checkpoints WHERE size >= ?", (first,))
        conn.execute("DELETE FROM log_nodes")  # the insider rebuilds the tree of what is left
        conn.close()
        # The desk's own user: they can clear the desk's keyring copy too. Only the
        # server's cosigned copy (and the server's record of it) is out of their reach.
        keyring_file = Path(self.env["CONSENTDESK_TEST_KEYRING"])
        held = json.loads(keyring_file.read_text(encoding="utf-8"))
        own = [k for k in held if "ledger-checkpoint-own:" in k]
        assert own
        for k in own:
            del held[k]
        keyring_file.write_text(json.dumps(held), encoding="utf-8")


def _rebuild_tree(desk: Desk) -> None:
    """Recompute the stored tree of the shortened file (what a careful insider would do)."""
    conn = sqlite3.connect(desk.data / FILE_NAME, isolation_level=None)
    compact = merkle.CompactRange()
    rows = conn.execute("SELECT seq, kind, recorded_at, body FROM entries ORDER BY seq").fetchall()
    for row in rows:
        conn.executemany(
            "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)",
            compact.append(tlog.entry_leaf(*row)),
        )
    conn.close()


@pytest.mark.parametrize(
    ("captures_after", "refusal"),
    [
        (0, "entries 31..32 are missing"),
        (1, "entries 32..32 are missing"),
        (2, "no longer extends the 32 entries this server cosigned"),
    ],
    ids=["truncated", "truncated-and-one-new", "rewritten-to-the-same-size"],
)
def test_a_desk_truncated_offline_is_refused_at_the_next_witnessing(
    server: tuple[ServerProcess, dict[str, str]], tmp_path: Path, captures_after: int, refusal: str
) -> None:
    proc, tokens = server
    desk = Desk(tmp_path, proc.url, tokens["alice"])
    assert desk.run("demo")[0] == 0
    code, out = desk.witness()
    assert code == 0 and "cosigned the ledger at 30 entries" in out, out
    desk.consent()
    desk.consent()
    code, out = desk.witness()
    assert code == 0 and "at 32 entries" in out, out

    desk.truncate_from(31)  # offline: the two newest consents vanish
    _rebuild_tree(desk)
    for _ in range(captures_after):
        desk.consent()  # and new records take their places
    code, out = desk.witness()
    assert code == 1 and out.startswith("REFUSED") and refusal in out, out
    # The desk's own verify fails too, against the server's cosigned copy in the keyring.
    code, out = desk.run("ledger", "verify")
    assert code == 1 and "BROKEN" in out, out
