"""An enrollment code signs a sidebar in: the sign-in page against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from server_records import CATALOGUE, SCRIPTS
from server_support import ThreadServer, seed_users, sqlite_url
from sqlalchemy import Engine

from consentdesk.gui.desk import Desk
from consentdesk.gui.signin import SignInPage
from consentdesk.gui.tasks import TaskRunner
from consentdesk.platform import secrets
from consentdesk.platform.config import Config
from consentdesk.server import db, tokens
from consentdesk.server.app import create_app
from consentdesk.stores.enrollment import looks_like_code
from consentdesk.stores.http_backend import probe_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    engine = db.make_engine(sqlite_url(tmp_path_factory.mktemp("enroll") / "server.db"))
    db.upgrade(engine)
    seed_users(engine)
    with ThreadServer(create_app(engine, catalogue=CATALOGUE, scripts=SCRIPTS)) as running:
        yield running.url, engine
    engine.dispose()


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    task_runner = TaskRunner(name="enroll-test-worker")
    yield task_runner
    task_runner.shutdown()


def page_for(qtbot: QtBot, tmp_path: Path, runner: TaskRunner, url: str) -> SignInPage:
    config = Config.load(user_file=tmp_path / "config.toml", site_files=[])
    page = SignInPage(Desk(config, runner))
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: page.sign_in_button.isEnabled() or page.status.text() != "")
    page.url.setText(url)
    return page


def test_an_enrollment_code_signs_the_sidebar_in(
    qtbot: QtBot, runner: TaskRunner, server: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = server
    code, _ = tokens.create_code(engine, "alice", token_days=90)
    page = page_for(qtbot, tmp_path, runner, url)
    page.token.setText(code.lower())
    page.agent_name.setText("Alice Adams")  # the name read out in scripts
    with qtbot.waitSignal(page.signed_in, timeout=10_000) as signal:
        page.sign_in_button.click()
    assert signal.args[0].name == "alice"
    assert "Signed in as alice (agent, team red)" in page.status.text()
    stored = secrets.get_token(url)
    assert stored is not None and stored.startswith("cdt_")  # the desk's own token
    assert probe_server(url, stored).name == "alice"
    assert page.desk.config.get("general.agent") == "alice"
    assert page.desk.config.get("general.agent_name") == "Alice Adams"
    qtbot.waitUntil(lambda: (tmp_path / "config.toml").exists())
    assert stored not in (tmp_path / "config.toml").read_text()
    # The code was one-time: a second desk cannot use it.
    other = page_for(qtbot, tmp_path / "other", runner, url)
    secrets.delete_token(url)
    other.token.setText(code)
    other.agent_name.setText("Someone Else")
    other.sign_in_button.click()
    qtbot.waitUntil(lambda: "already used" in other.status.text(), timeout=10_000)
    assert secrets.get_token(url) is None


def test_codes_and_tokens_are_told_apart() -> None:
    assert looks_like_code("ABCD-EFGH") and looks_like_code("abcd efgh")
    assert not looks_like_code("cdt_ABCDEFGH") and not looks_like_code("ABCD-EFG0")
