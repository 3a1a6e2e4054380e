"""The sidebar on the team server: real ``consentdesk serve`` (SQLite), real tokens from
``consentdesk user add`` / ``token create``, real clicks; offline capture and sync."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import keyring
import pytest
from keyring.backends import fail
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLabel, QLineEdit
from pytestqt.qtbot import QtBot
from sidebar_support import AGENT_NAME, DIALLED, NUMBER, click, click_index, open_caller_by_typing

from consentdesk.domain.incident import IncidentOpened
from consentdesk.domain.model import Channel, ConsentEvent, ConsentState, utcnow
from consentdesk.domain.review import Forbidden, ReadLogFilter, Role, Viewer
from consentdesk.gui.app import create_app
from consentdesk.gui.desk import NOT_SIGNED_IN, UNREACHABLE
from consentdesk.gui.flows import ConsentFlow, Outcome
from consentdesk.gui.main import Sidebar, build_sidebar
from consentdesk.gui.models import StateRole
from consentdesk.gui.settings import FROM_SIGN_IN
from consentdesk.gui.signin import SignInPage
from consentdesk.gui.widgets import Banner
from consentdesk.gui.window import GEOMETRY_KEY
from consentdesk.platform import secrets
from consentdesk.platform.config import Config
from consentdesk.platform.context import Context
from consentdesk.stores import review_access
from consentdesk.stores.http_backend import open_http_backend

REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 20_000
CONFIG_AGENT = "config.agent"  # set in every desk's config: the server must not use it
INCIDENT_SCRIPT = "We are aware that some letters went to the wrong address. We are sorry."


# --- the team server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TeamServer:
    """``consentdesk serve`` on a SQLite file, on one loopback port across restarts."""

    database: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        """Run a ``consentdesk`` command against this server's database; its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "consentdesk", *args, "--database", self.database],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"consentdesk {' '.join(args)}: {done.stderr}"
        return done.stdout

    def add_user(self, name: str, role: str, team: str) -> str:
        """A user and a fresh token for them, as an administrator makes them."""
        self.cli("user", "add", name, "--role", role, "--team", team)
        return self.cli("token", "create", name).splitlines()[0].strip()

    def start(self, qtbot: QtBot) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "consentdesk",
                    "serve",
                    "--database",
                    self.database,
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        qtbot.waitUntil(self._ready, timeout=WAIT_MS)

    def _ready(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, f"the server exited: {self.log_path.read_text()}"
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)

    def get(self, token: str, path: str) -> Any:
        """A read on the server's API as the owner of *token*."""
        answer = httpx.get(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def history(self, token: str, number: str = NUMBER) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get(token, f"/v1/subjects/{number}/history")
        return found


@pytest.fixture
def team_server(qtbot: QtBot, tmp_path: Path) -> Iterator[TeamServer]:
    server = TeamServer(
        database=f"sqlite:///{tmp_path / 'team.db'}",
        port=free_port(),
        log_path=tmp_path / "server.log",
    )
    server.cli("db", "upgrade")
    server.start(qtbot)
    yield server
    server.stop()


# --- sidebars ---------------------------------------------------------------------------------

MakeSidebar = Callable[..., Sidebar]


@pytest.fixture
def make_desk(qtbot: QtBot, tmp_path: Path) -> Iterator[MakeSidebar]:
    """Sidebars with a data folder and user config each, set up for *server_url*."""
    create_app()
    QSettings().remove(GEOMETRY_KEY)
    made: list[Sidebar] = []

    def make(name: str, server_url: str, *, agent_name: str = AGENT_NAME) -> Sidebar:
        home = tmp_path / name
        (home / "data").mkdir(parents=True)
        config = Config.load(user_file=home / "config.toml", site_files=[])
        config.set("server.url", server_url)
        config.set("general.agent", CONFIG_AGENT)
        if agent_name:
            config.set("general.agent_name", agent_name)
        config.set("general.languages", ["en", "de"])
        sidebar = build_sidebar(Context(config=config, data_dir=home / "data"))
        made.append(sidebar)
        with qtbot.waitExposed(sidebar.window):
            sidebar.window.show()
        return sidebar

    yield make
    for sidebar in made:
        sidebar.shutdown()


def load(qtbot: QtBot, sidebar: Sidebar) -> None:
    """Open the store as the running sidebar does once its window is painted."""
    with qtbot.waitSignal(sidebar.desk.ready, timeout=WAIT_MS):
        sidebar.desk.load()


def fail_to_load(qtbot: QtBot, sidebar: Sidebar) -> str:
    with qtbot.waitSignal(sidebar.desk.load_failed, timeout=WAIT_MS) as failed:
        sidebar.desk.load()
    return str(failed.args[0])


def sign_in_in_settings(
    qtbot: QtBot, sidebar: Sidebar, token: str, *, name: str | None = None
) -> None:
    """From the inline "not signed in" state: Open Settings, paste the token (and type
    the name read in scripts, if given), Sign in."""
    window = sidebar.window
    click(qtbot, window.server_settings_button)
    dialog = window.settings_dialog
    assert dialog is not None and dialog.isVisible()
    page = dialog.tabs.currentWidget()
    assert isinstance(page, SignInPage), "Open Settings lands on the team server page"
    qtbot.waitUntil(lambda: page.status.text() == "Not signed in", timeout=WAIT_MS)
    qtbot.keyClicks(page.token, token)
    if name is not None:
        page.agent_name.clear()
        qtbot.keyClicks(page.agent_name, name)
    with qtbot.waitSignal(sidebar.desk.ready, timeout=WAIT_MS):
        click(qtbot, page.sign_in_button)
    assert page.token.text() == ""
    dialog.reject()


def select_cell(qtbot: QtBot, sidebar: Sidebar, purpose: str, channel: Channel) -> None:
    panel = sidebar.window.panel
    index = panel.grid_model.index_for(purpose, channel)
    assert index.isValid()
    click_index(qtbot, panel.grid, index.row(), index.column())


def cell_state(sidebar: Sidebar, purpose: str, channel: Channel) -> ConsentState:
    index = sidebar.window.panel.grid_model.index_for(purpose, channel)
    return ConsentState(index.data(StateRole))


def give_consent(qtbot: QtBot, sidebar: Sidebar, purpose: str, channel: Channel) -> ConsentEvent:
    """Ask consent for one cell and record "agreed", as the agent clicks it."""
    panel = sidebar.window.panel
    new_caller = panel.unknown_note.isVisible()  # no grid: purpose and channel in the form
    if not new_caller:
        select_cell(qtbot, sidebar, purpose, channel)
    click(qtbot, panel.consent_button)
    flow = panel.flow
    assert isinstance(flow, ConsentFlow)
    if new_caller:
        click(qtbot, flow.purpose_boxes[purpose])
        click(qtbot, flow.channel_boxes[channel])
    qtbot.waitUntil(flow.read_aloud.isEnabled, timeout=WAIT_MS)
    click(qtbot, flow.read_aloud)
    with qtbot.waitSignal(panel.captured, timeout=WAIT_MS) as captured:
        click(qtbot, flow.agreed)
    outcome = captured.args[0]
    assert isinstance(outcome, Outcome) and len(outcome.events) == 1
    return outcome.events[0]


def reload_caller(qtbot: QtBot, sidebar: Sidebar) -> None:
    panel = sidebar.window.panel
    with qtbot.waitSignal(panel.caller_shown, timeout=WAIT_MS):
        panel.reload()


def open_caller_by_typing_without_status(qtbot: QtBot, sidebar: Sidebar) -> None:
    """Manual call for a caller whose status cannot be read: the panel says why."""
    window = sidebar.window
    qtbot.keyClicks(window.lookup, DIALLED)
    click(qtbot, window.manual_button)
    qtbot.waitUntil(lambda: window.panel.banner.mode == Banner.ERROR, timeout=WAIT_MS)


def open_incident(server: TeamServer, data_dir: Path, lead_token: str) -> uuid.UUID:
    """A lead opens an incident from another desk, through the same seam."""
    note = IncidentOpened(
        incident_id=uuid.uuid4(),
        title="Letters sent to wrong addresses",
        what_happened="A print run used last month's address file.",
        aware_at=utcnow() - timedelta(hours=2),
        purposes=("marketing-offers",),
        regions=("DE",),
        script=INCIDENT_SCRIPT,
        by="lena",
    )
    with closing(open_http_backend(server.url, data_dir, token=lead_token)) as backend:
        review_access.incidents_for(backend, backend.me()).record_incident(note)
    return note.incident_id


def synced(sidebar: Sidebar) -> bool:
    state = sidebar.desk.server
    return state.waiting == 0 and not state.unreachable and state.sync_error is None


# --- tests ----------------------------------------------------------------------------------


def test_two_agents_share_one_ledger_through_the_server(
    qtbot: QtBot, team_server: TeamServer, make_desk: MakeSidebar, tmp_path: Path
) -> None:
    alice_token = team_server.add_user("alice", "agent", "red")
    bert_token = team_server.add_user("bert", "agent", "red")
    lena_token = team_server.add_user("lena", "lead", "red")
    # One test process has one keyring, which keeps one token per server address:
    # the second desk reaches the same server as "localhost".
    alice = make_desk("alice", team_server.url)
    # Bert's desk knows no name yet: the sign-in asks for the one read in scripts.
    bert = make_desk("bert", team_server.url.replace("127.0.0.1", "localhost"), agent_name="")
    for sidebar, token, name, spoken in (
        (alice, alice_token, "alice", None),
        (bert, bert_token, "bert", "Bert Baker"),
    ):
        assert fail_to_load(qtbot, sidebar) == NOT_SIGNED_IN
        sign_in_in_settings(qtbot, sidebar, token, name=spoken)
        assert sidebar.desk.agent == name
        assert sidebar.window.agent_label.text() == f"Signed in as {name}"
        assert not sidebar.window.server_problem_row.isVisible()

    open_caller_by_typing(qtbot, alice)
    open_caller_by_typing(qtbot, bert)
    by_alice = give_consent(qtbot, alice, "marketing-offers", Channel.EMAIL)
    by_bert = give_consent(qtbot, bert, "marketing-offers", Channel.SMS)
    assert bert.desk.agent_name == "Bert Baker"
    assert "My name is Bert Baker" in by_bert.notice.text and "bert" not in by_bert.notice.text
    assert alice.window.panel.banner.text.text().startswith("Saved on this desk (will sync)")
    # Each desk sends its capture right away; the server has both once both passes ran.
    both = {str(by_alice.event_id), str(by_bert.event_id)}
    qtbot.waitUntil(
        lambda: {e["event_id"] for e in team_server.history(lena_token)} == both,
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: synced(alice) and synced(bert), timeout=WAIT_MS)

    # Each desk sees the other's capture once it reads the caller again (Reload, F5).
    for sidebar in (alice, bert):
        reload_caller(qtbot, sidebar)
        assert cell_state(sidebar, "marketing-offers", Channel.EMAIL) == ConsentState.GIVEN
        assert cell_state(sidebar, "marketing-offers", Channel.SMS) == ConsentState.GIVEN

    # The server's ledger holds both, each under the agent who signed in.
    held = {e["event_id"]: e["agent"] for e in team_server.history(lena_token)}
    assert held == {str(by_alice.event_id): "alice", str(by_bert.event_id): "bert"}
    # The lead of their team sees both captures in the review.
    rows = team_server.get(lena_token, "/v1/review/actions")["rows"]
    assert {(r["event_id"], r["agent"]) for r in rows} == {
        (str(by_alice.event_id), "alice"),
        (str(by_bert.event_id), "bert"),
    }
    # The server logged the desks' lookups, each with the call it was made from.
    reads = team_server.get(lena_token, f"/v1/review/read-log?subject=%2B{NUMBER[1:]}")
    calls = {(r["read"]["reader"], r["read"]["call_id"]) for r in reads}
    for sidebar, name in ((alice, "alice"), (bert, "bert")):
        call = sidebar.calls.active
        assert call is not None and call.call_id is not None
        assert (name, call.call_id) in calls

    # A lead opens an incident on the server: the desks show it and tag calls there.
    incident_id = open_incident(team_server, tmp_path / "lead", lena_token)
    banner = alice.window.incident_banner
    assert banner is not None and banner.available
    banner.refresh()
    qtbot.waitUntil(banner.isVisible, timeout=WAIT_MS)
    (card,) = banner.cards
    assert card.incident_id == incident_id and card.script.toPlainText() == INCIDENT_SCRIPT
    with qtbot.waitSignal(banner.tagged, timeout=WAIT_MS):
        click(qtbot, card.tag_button)
    tags = team_server.get(lena_token, f"/v1/incidents/{incident_id}/calls")
    alice_call = alice.calls.active
    assert alice_call is not None
    assert [(t["call_id"], t["agent"]) for t in tags] == [(alice_call.call_id, "alice")]

    # Signing out reopens the store: the desk is back to "not signed in".
    click(qtbot, bert.window.settings_button)
    dialog = bert.window.settings_dialog
    assert dialog is not None
    page = next(
        w for i in range(dialog.tabs.count()) if isinstance(w := dialog.tabs.widget(i), SignInPage)
    )
    qtbot.waitUntil(lambda: page.status.text().startswith("Signed in to"), timeout=WAIT_MS)
    dialog.tabs.setCurrentWidget(page)
    with qtbot.waitSignal(bert.desk.load_failed, timeout=WAIT_MS):
        click(qtbot, page.sign_out_button)
    dialog.reject()
    assert bert.window.server_problem.text() == NOT_SIGNED_IN
    assert bert.desk.identity is None and not bert.window.panel.consent_button.isEnabled()


def test_a_capture_while_the_server_is_down_is_kept_and_sent_once_it_is_back(
    qtbot: QtBot,
    team_server: TeamServer,
    make_desk: MakeSidebar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = team_server.add_user("alice", "agent", "red")
    # Headless Linux: no OS keyring, the token comes from the environment.
    keyring.set_keyring(fail.Keyring())
    monkeypatch.setenv(secrets.TOKEN_ENV, token)
    sidebar = make_desk("alice", team_server.url)
    load(qtbot, sidebar)
    assert sidebar.desk.agent == "alice"
    window = sidebar.window
    # Settings show the agent id the token gives, not the config's, and cannot change it.
    click(qtbot, window.settings_button)
    dialog = window.settings_dialog
    assert dialog is not None and "general.agent" not in dialog.fields
    agent_box = next(b for b in dialog.findChildren(QLineEdit) if b.accessibleName() == "Agent id")
    assert agent_box.text() == "alice" and not agent_box.isEnabled()
    note = dialog.findChild(QLabel, "set-by:general.agent")
    assert note is not None and FROM_SIGN_IN in note.text()
    dialog.reject()
    open_caller_by_typing(qtbot, sidebar)
    assert not window.server_bar.isVisible(), "nothing waits, the server is there"

    team_server.stop()
    event = give_consent(qtbot, sidebar, "marketing-offers", Channel.EMAIL)
    panel = window.panel
    assert panel.banner.text.text().startswith("Saved on this desk (will sync)")
    assert cell_state(sidebar, "marketing-offers", Channel.EMAIL) == ConsentState.GIVEN
    qtbot.waitUntil(lambda: sidebar.desk.server.unreachable, timeout=WAIT_MS)
    assert window.sync_waiting_row.isVisible()
    assert window.sync_waiting.text() == "1 waiting to sync"
    assert window.sync_offline.isVisible() and window.sync_offline.text() == UNREACHABLE
    # Reading the caller again while offline still shows the capture, from this desk.
    reload_caller(qtbot, sidebar)
    assert cell_state(sidebar, "marketing-offers", Channel.EMAIL) == ConsentState.GIVEN

    team_server.start(qtbot)
    click(qtbot, window.send_now_button)
    qtbot.waitUntil(lambda: synced(sidebar), timeout=WAIT_MS)
    assert not window.server_bar.isVisible()
    held = [e for e in team_server.history(token) if e["event_id"] == str(event.event_id)]
    assert len(held) == 1 and held[0]["agent"] == "alice"


def test_not_signed_in_is_an_inline_state_with_the_way_to_settings(
    qtbot: QtBot, make_desk: MakeSidebar
) -> None:
    # Nothing listens here: no sign-in, no network is needed to say so.
    sidebar = make_desk("alice", f"http://127.0.0.1:{free_port()}")
    assert fail_to_load(qtbot, sidebar) == NOT_SIGNED_IN
    window = sidebar.window
    assert window.server_bar.isVisible() and window.server_problem_row.isVisible()
    assert window.server_problem.text() == NOT_SIGNED_IN
    # A caller still comes up, with the reason instead of a grid; nothing crashes.
    open_caller_by_typing_without_status(qtbot, sidebar)
    banner = window.panel.banner.text.text()
    assert banner == f"The team server cannot be used: {NOT_SIGNED_IN}"
    assert not window.panel.consent_button.isEnabled()

    click(qtbot, window.server_settings_button)
    dialog = window.settings_dialog
    assert dialog is not None and isinstance(dialog.tabs.currentWidget(), SignInPage)
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "&Team server"
    dialog.reject()


def test_without_a_keyring_or_with_a_bad_address_the_sidebar_says_so(
    qtbot: QtBot, make_desk: MakeSidebar
) -> None:
    keyring.set_keyring(fail.Keyring())
    assert secrets.TOKEN_ENV not in os.environ
    headless = make_desk("headless", f"http://127.0.0.1:{free_port()}")
    message = fail_to_load(qtbot, headless)
    assert message.startswith("No OS keyring: set CONSENTDESK_TOKEN")
    assert headless.window.server_problem.text() == message
    assert headless.window.server_settings_button.isVisible()

    far = make_desk("far", f"http://ledger-{uuid.uuid4().hex[:6]}.example.com")
    message = fail_to_load(qtbot, far)
    assert "plain http" in message and "https://" in message
    assert far.window.server_problem.text() == message


def test_the_review_seam_on_the_team_server(team_server: TeamServer, tmp_path: Path) -> None:
    lena_token = team_server.add_user("lena", "lead", "red")
    alice_token = team_server.add_user("alice", "agent", "red")
    with (
        closing(open_http_backend(team_server.url, tmp_path / "lena", token=lena_token)) as lead,
        closing(open_http_backend(team_server.url, tmp_path / "alice", token=alice_token)) as desk,
    ):
        lena, alice = lead.me(), desk.me()
        assert lena == Viewer("lena", Role.LEAD, "red")
        # The server logs the lookup itself, with the call the desk sends along.
        status = review_access.lookup_status(desk, alice, NUMBER, call_id="call-42")
        assert status.subject.number == NUMBER
        reads = team_server.get(lena_token, "/v1/review/read-log")
        assert [(r["read"]["reader"], r["read"]["call_id"]) for r in reads] == [
            ("alice", "call-42")
        ]
        with pytest.raises(Forbidden):
            review_access.review_source_for(desk, alice)
        source = review_access.review_source_for(lead, lena)
        assert source.viewer == lena
        assert source.read_log(ReadLogFilter())[0].read.call_id == "call-42"
        assert review_access.incidents_for(desk, alice).incidents(open_only=True) == ()
        source.close()
        assert lead.me() == lena, "the source shares the backend and leaves it open"
