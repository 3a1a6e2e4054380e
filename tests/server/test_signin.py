"""The sign-in page: real server, real keyring API (in memory), work on the worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from pytestqt.qtbot import QtBot
from server_records import CATALOGUE, SCRIPTS
from server_support import ThreadServer, seed_users, sqlite_url

from consentdesk.gui.desk import Desk
from consentdesk.gui.signin import MANAGED, SignInPage
from consentdesk.gui.tasks import TaskRunner
from consentdesk.platform import secrets
from consentdesk.platform.config import Config
from consentdesk.server import db
from consentdesk.server.app import create_app
from consentdesk.stores import http_backend


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    engine = db.make_engine(sqlite_url(tmp_path_factory.mktemp("signin") / "server.db"))
    db.upgrade(engine)
    tokens = seed_users(engine)
    with ThreadServer(create_app(engine, catalogue=CATALOGUE, scripts=SCRIPTS)) as running:
        yield running.url, tokens
    engine.dispose()


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    task_runner = TaskRunner(name="signin-test-worker")
    yield task_runner
    task_runner.shutdown()


def make_page(qtbot: QtBot, config: Config, runner: TaskRunner) -> SignInPage:
    page = SignInPage(Desk(config, runner))
    qtbot.addWidget(page)
    qtbot.waitUntil(lambda: page.sign_in_button.isEnabled() or page.status.text() != "")
    return page


def user_config(tmp_path: Path) -> Config:
    return Config.load(user_file=tmp_path / "config.toml", site_files=[])


def test_sign_in_stores_the_token_in_the_keyring_only(
    qtbot: QtBot,
    runner: TaskRunner,
    server: tuple[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, tokens = server
    threads: list[threading.Thread] = []
    real_probe = http_backend.probe_server

    def probe(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread())
        return real_probe(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("consentdesk.gui.signin.probe_server", probe)
    config = user_config(tmp_path)
    page = make_page(qtbot, config, runner)
    page.url.setText(url)
    page.token.setText(tokens["alice"])
    page.agent_name.setText("Alice Archer")  # read to customers in scripts
    with qtbot.waitSignal(page.signed_in, timeout=10_000) as signal:
        page.sign_in_button.click()
    assert signal.args[0].name == "alice"
    assert "Signed in as alice (agent, team red)" in page.status.text()
    assert page.token.text() == ""
    assert secrets.get_token(url) == tokens["alice"]
    qtbot.waitUntil(lambda: (tmp_path / "config.toml").exists())
    saved = (tmp_path / "config.toml").read_text()
    assert url in saved and tokens["alice"] not in saved
    assert config.get("general.agent") == "alice"  # captures now name the signed-in user
    assert config.get("general.agent_name") == "Alice Archer"
    assert threads and all(t is not threading.main_thread() for t in threads)


def test_a_wrong_token_is_refused_and_not_stored(
    qtbot: QtBot, runner: TaskRunner, server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, _ = server
    page = make_page(qtbot, user_config(tmp_path), runner)
    page.url.setText(url)
    page.token.setText("cdt_wrong")
    page.agent_name.setText("Alice Archer")
    page.sign_in_button.click()
    qtbot.waitUntil(lambda: "does not accept this sign-in" in page.status.text(), timeout=10_000)
    assert secrets.get_token(url) is None


def test_plain_http_to_another_host_is_refused_at_once(
    qtbot: QtBot, runner: TaskRunner, tmp_path: Path
) -> None:
    page = make_page(qtbot, user_config(tmp_path), runner)
    page.url.setText("http://ledger.example.org")
    page.token.setText("cdt_x")
    page.sign_in_button.click()
    assert "Use https://" in page.status.text()
    page.token.clear()
    page.sign_in_button.click()
    assert "Paste the token" in page.status.text()


def test_test_connection_and_sign_out(
    qtbot: QtBot, runner: TaskRunner, server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, tokens = server
    secrets.set_token(url, tokens["lena"])
    config = user_config(tmp_path)
    config.set("server.url", url)
    page = make_page(qtbot, config, runner)
    qtbot.waitUntil(lambda: page.status.text().startswith("Signed in to"), timeout=10_000)
    page.test_button.click()
    qtbot.waitUntil(lambda: "as lena (lead, team red)" in page.status.text(), timeout=10_000)
    with qtbot.waitSignal(page.signed_out, timeout=10_000):
        page.sign_out_button.click()
    assert secrets.get_token(url) is None
    page.test_button.click()
    qtbot.waitUntil(lambda: "not signed in" in page.status.text(), timeout=10_000)


def test_a_locked_server_url_is_shown_as_managed(
    qtbot: QtBot, runner: TaskRunner, tmp_path: Path
) -> None:
    config = Config(
        site={"server.url": "https://ledger.example.org"},
        locked=frozenset({"server.url"}),
        user_file=tmp_path / "config.toml",
    )
    page = make_page(qtbot, config, runner)
    assert not page.url.isEnabled()
    assert page.url.text() == "https://ledger.example.org"
    assert MANAGED in page.managed.text() and not page.managed.isHidden()


def test_without_a_keyring_the_page_says_so(
    qtbot: QtBot, runner: TaskRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring.set_keyring(fail.Keyring())
    config = user_config(tmp_path)
    config.set("server.url", "https://ledger.example.org")
    page = make_page(qtbot, config, runner)
    qtbot.waitUntil(lambda: "No OS keyring" in page.status.text(), timeout=10_000)
    assert "set CONSENTDESK_TOKEN" in page.status.text()
    assert not page.sign_in_button.isEnabled()
    monkeypatch.setenv("CONSENTDESK_TOKEN", "cdt_env")
    page.refresh()
    qtbot.waitUntil(lambda: "using CONSENTDESK_TOKEN" in page.status.text(), timeout=10_000)
