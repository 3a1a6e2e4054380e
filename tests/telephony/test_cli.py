"""``consentdesk call`` / ``open-uri`` / ``calls`` as softphones run them: separate processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from consentdesk.domain import phone
from consentdesk.platform.config import Config
from consentdesk.stores.demo import DEMO_CALLER
from consentdesk.telephony.calls import RecentCalls
from consentdesk.telephony.events import CallPhase, CallSource
from consentdesk.telephony.handoff import InstancePaths, drain_spool
from consentdesk.telephony.handoff_client import default_data_dir

from .helpers import OFFSCREEN_LIMITS, RunningSidebar, SidebarStarter, seeded_data_dir

pytestmark = OFFSCREEN_LIMITS


def cli(data_dir: Path, config: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "consentdesk",
        "--data-dir",
        str(data_dir),
        "--config",
        str(config),
        *args,
    ]


def start_cli(data_dir: Path, config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli(data_dir, config, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for the CLI, blocking this thread (and so any sidebar in this process)."""
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def run(qtbot: QtBot, data_dir: Path, config: Path, *args: str) -> tuple[int, str, str]:
    """Run the CLI while the in-process sidebar keeps serving its event loop."""
    proc = start_cli(data_dir, config, *args)
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=30_000)
    return finish(proc)


@pytest.fixture
def running(start_sidebar: Callable[..., RunningSidebar]) -> RunningSidebar:
    return start_sidebar()


def test_call_pops_the_caller_in_the_running_sidebar(
    qtbot: QtBot, running: RunningSidebar, data_dir: Path, config_file: Path
) -> None:
    with qtbot.waitSignal(running.panel.caller_shown, timeout=20_000) as shown:
        code, out, err = run(
            qtbot, data_dir, config_file, "call", "0151 1234 5678", "--call-id", "ms-42"
        )
    assert (code, out, err) == (0, "", "")
    assert shown.args == [DEMO_CALLER]
    active = running.calls.active
    assert (active.call_id, active.number, active.source) == ("ms-42", DEMO_CALLER, "command")


def test_microsip_hooks_without_call_id_make_one_call(
    qtbot: QtBot, running: RunningSidebar, data_dir: Path, config_file: Path
) -> None:
    for event in ("incoming", "answered"):
        code, _, err = run(qtbot, data_dir, config_file, "call", "+4915112345678", "--event", event)
        assert (code, err) == (0, "")
    qtbot.waitUntil(lambda: len(running.routed) == 2, timeout=20_000)
    active = running.calls.active
    assert active is not None and active.phase == CallPhase.ANSWERED
    assert active.call_id.startswith("desk-")
    code, _, _ = run(qtbot, data_dir, config_file, "call", "015112345678", "--event", "ended")
    assert code == 0
    qtbot.waitUntil(lambda: running.calls.active is None, timeout=20_000)  # cleared after 0 s
    assert {e.call_id for e in running.routed} == {active.call_id}


def test_open_uri_pops_with_its_call_id(
    qtbot: QtBot, running: RunningSidebar, data_dir: Path, config_file: Path
) -> None:
    uri = "consentdesk://call?number=%2B4915112345678&id=crm-7&event=incoming&utm=x"
    with qtbot.waitSignal(running.panel.caller_shown, timeout=20_000):
        code, _, err = run(qtbot, data_dir, config_file, "open-uri", uri)
    assert (code, err) == (0, "")
    assert running.calls.active.call_id == "crm-7"
    assert running.calls.active.source == CallSource.URI


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["open-uri", "javascript:alert(1)"], "unsupported URI scheme"),
        (["open-uri", "file:///etc/passwd"], "unsupported URI scheme"),
        (["open-uri", "consentdesk://call?number=%0A"], "control characters"),
        (["call", "<script>"], "not digits"),
        (["call", "+4915112345678", "--call-id", "a b"], "--call-id"),
        (["call", "+4915112345678", "--event", "exploded"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_nothing_reaches_the_sidebar(
    qtbot: QtBot,
    running: RunningSidebar,
    data_dir: Path,
    config_file: Path,
    args: list[str],
    message: str,
) -> None:
    code, out, err = run(qtbot, data_dir, config_file, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    # A valid call sent afterwards is the first thing the sidebar sees.
    with qtbot.waitSignal(running.telephony.event_routed, timeout=20_000):
        assert run(qtbot, data_dir, config_file, "call", "+4915112345678")[0] == 0
    assert len(running.routed) == 1


def test_calls_lists_this_shifts_calls_with_captures(
    qtbot: QtBot, running: RunningSidebar, data_dir: Path, config_file: Path
) -> None:
    with qtbot.waitSignal(running.panel.caller_shown, timeout=20_000):
        run(qtbot, data_dir, config_file, "call", "+4915112345678", "--call-id", "c-1")
    capture = uuid.uuid4()
    running.telephony.note_capture("c-1", capture)
    records: list[object] = []
    running.telephony.recent_calls(records.append)  # queued after the capture note
    qtbot.waitUntil(lambda: bool(records), timeout=20_000)
    [[record]] = records
    assert record.call_id == "c-1" and record.captures == (capture,)
    code, out, err = run(qtbot, data_dir, config_file, "calls", "--json")
    assert (code, err) == (0, "")
    [listed] = json.loads(out)
    assert listed["call_id"] == "c-1"
    assert listed["number"] == DEMO_CALLER
    assert listed["captures"] == [str(capture)]
    code, out, _ = run(qtbot, data_dir, config_file, "calls")
    assert code == 0 and phone.display(DEMO_CALLER) in out and "c-1" not in out


def test_busy_sidebar_still_gets_the_call_once(
    qtbot: QtBot, running: RunningSidebar, data_dir: Path, config_file: Path
) -> None:
    # finish() blocks this thread, so the sidebar cannot answer within the
    # CLI's deadline: the CLI says so and fails (the softphone sees it), but
    # neither spools a copy nor starts a second sidebar: the sidebar has the
    # bytes and pops the call once it reads them.
    proc = start_cli(data_dir, config_file, "call", "+4915112345678", "--call-id", "busy-1")
    code, out, err = finish(proc)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "did not acknowledge the call" in err, err
    qtbot.waitUntil(lambda: len(running.routed) == 1, timeout=20_000)
    paths = InstancePaths.for_data_dir(data_dir)
    assert drain_spool(paths) == []  # no second copy waiting to pop the call again
    assert not paths.launch_marker.exists()
    assert [e.call_id for e in running.routed] == ["busy-1"]


def test_calls_when_there_are_none(qtbot: QtBot, data_dir: Path, config_file: Path) -> None:
    code, out, err = run(qtbot, data_dir, config_file, "calls")
    assert (code, out, err) == (0, "No calls this shift.\n", "")
    code, out, _ = run(qtbot, data_dir, config_file, "calls", "--json")
    assert json.loads(out) == []


# --- no sidebar running: the call starts one -------------------------------------------


def _sidebar_pids(data_dir: Path) -> list[int]:
    """Sidebar processes started for *data_dir* (they run in their own session)."""
    needle = str(data_dir).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"consentdesk" in cmdline and needle in cmdline and b"\0call\0" not in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def spawned_sidebars(data_dir: Path) -> Iterator[None]:
    yield
    for pid in _sidebar_pids(data_dir):
        os.kill(pid, signal.SIGTERM)


def test_call_without_a_sidebar_starts_one_that_receives_it(
    qtbot: QtBot, tmp_path: Path, config_file: Path, spawned_sidebars: None
) -> None:
    data_dir = seeded_data_dir(tmp_path / "data")
    code, out, err = run(
        qtbot, data_dir, config_file, "call", "+4915112345678", "--call-id", "cold-1"
    )
    assert (code, out, err) == (0, "", "")
    paths = InstancePaths.for_data_dir(data_dir)
    config = Config.load(user_file=config_file, site_files=[])
    qtbot.waitUntil(lambda: "cold-1" in _recorded_ids(data_dir, config), timeout=60_000)
    assert len(_sidebar_pids(data_dir)) == 1
    assert not paths.launch_marker.exists()  # the sidebar took over
    # A second call now goes straight to it.
    assert run(qtbot, data_dir, config_file, "call", "+4930901820", "--call-id", "warm-2")[0] == 0
    qtbot.waitUntil(lambda: _recorded_ids(data_dir, config) >= {"cold-1", "warm-2"}, timeout=30_000)
    assert len(_sidebar_pids(data_dir)) == 1


def _recorded_ids(data_dir: Path, config: Config) -> set[str]:
    return {r.call_id for r in RecentCalls.open(data_dir, config).recent()}


ALIAS_PROBE = """\
import json, sys
from consentdesk import cli
code = cli.main(sys.argv[1:])
print(json.dumps({"code": code, "platformdirs": "platformdirs" in sys.modules}))
"""


@pytest.fixture
def default_folder_sidebar(qtbot: QtBot, config_file: Path) -> Iterator[SidebarStarter]:
    """Sidebars on the default data folder (the isolated XDG_DATA_HOME's)."""
    default = Path(default_data_dir())
    starter = SidebarStarter(qtbot, default, config_file)
    yield starter
    starter.close()
    shutil.rmtree(default, ignore_errors=True)
    assert not os.path.lexists(InstancePaths.default_alias().server_name), "alias left behind"


def test_call_naming_no_folder_reaches_the_default_folders_sidebar_by_its_alias(
    qtbot: QtBot, config_file: Path, default_folder_sidebar: SidebarStarter
) -> None:
    running = default_folder_sidebar()
    assert os.path.islink(InstancePaths.default_alias().server_name)
    args = ["--config", str(config_file), "call", "+4915112345678", "--call-id", "dflt-1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", ALIAS_PROBE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=30_000)
    out, err = proc.communicate()
    # Acknowledged, without working out the default folder (no platformdirs).
    assert json.loads(out) == {"code": 0, "platformdirs": False}, err
    qtbot.waitUntil(lambda: [e.call_id for e in running.routed] == ["dflt-1"], timeout=10_000)
